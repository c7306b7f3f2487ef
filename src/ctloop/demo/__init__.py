"""``ctloop demo``: the whole continuous-training loop on real data (about 11 minutes on 2 cores).

Trains the flights example on January–February 2013, serves it, replays the rest of the
year as HTTP requests with labels a week late, lets monitoring and the scheduler retrain,
gate and promote, and ends with a report comparing the static model with the loop. See
:mod:`ctloop.demo._loop`.
"""

from __future__ import annotations

__all__: list[str] = []
