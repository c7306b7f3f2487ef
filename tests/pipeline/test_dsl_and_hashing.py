"""The DSL builds graphs; cache keys follow code, parameters and inputs exactly."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctloop import FilePath, pipeline, step
from ctloop.errors import ParameterError, PipelineDefinitionError
from ctloop.pipeline._hashing import cache_key, code_hash, file_digest, param_fingerprint
from ctloop.pipeline._loading import load_module_from_file
from ctloop.pipeline._params import parse_cli_params
from tests.pipeline import sample_pipelines as sp


def test_graph_of_the_regression_pipeline() -> None:
    graph = sp.regression.build({"path": "x.csv"})
    assert graph.order() == ["load", "split", "fit", "score"]
    split = graph.invocations["split"]
    assert split.params == {"test_fraction": 0.25}
    assert {k: (h.invocation, h.output) for k, h in graph.invocations["score"].inputs.items()} == {
        "coef": ("fit", "output"),
        "test": ("split", "test"),
    }
    assert isinstance(graph.params["path"], FilePath)
    assert graph.downstream("split") == {"fit", "score"}


def test_repeated_steps_get_numbered_ids() -> None:
    graph = sp.branches.build({})
    assert set(graph.invocations) == {"number", "number_2", "number_3", "total", "boom", "total_2"}


class Pair(NamedTuple):
    left: int
    right: int


def test_output_names_from_annotations_and_decorator() -> None:
    @step
    def named() -> Pair:
        return Pair(1, 2)

    @step
    def tupled() -> tuple[int, int, int]:
        return 1, 2, 3

    @step(outputs=("a", "b"))
    def declared() -> tuple[int, int]:
        return 1, 2

    assert named.output_names == ("left", "right")
    assert tupled.output_names == ("output_0", "output_1", "output_2")
    assert declared.output_names == ("a", "b")
    assert sp.total.output_names == ("output",)


def test_passing_a_whole_multi_output_is_an_error() -> None:
    @pipeline
    def wrong():
        parts = sp.split(sp.load("x.csv"))
        sp.fit(parts)

    with pytest.raises(PipelineDefinitionError, match="unpack"):
        wrong.build({})


def test_bad_step_arguments_name_the_step() -> None:
    @pipeline
    def wrong():
        sp.total(1)

    with pytest.raises(PipelineDefinitionError, match="step 'total'"):
        wrong.build({})


def test_cli_parameters_are_converted_by_the_signature() -> None:
    values = parse_cli_params(
        sp.regression.fn, ["degree=3", "test_fraction=0.5", "path=a.csv"], "p"
    )
    assert values == {"degree": 3, "test_fraction": 0.5, "path": FilePath("a.csv")}
    assert isinstance(values["path"], FilePath)
    with pytest.raises(ParameterError, match="'degree' expects int but got 'x'"):
        parse_cli_params(sp.regression.fn, ["degree=x"], "p")
    with pytest.raises(ParameterError, match="key=value"):
        parse_cli_params(sp.regression.fn, ["degree"], "p")
    with pytest.raises(ParameterError, match="parameters are: path, degree, test_fraction"):
        parse_cli_params(sp.regression.fn, ["nope=1"], "p")


def _module(tmp_path: Path, name: str, body: str):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return load_module_from_file(path)


def test_code_hash_ignores_comments_docstrings_and_formatting(tmp_path: Path) -> None:
    a = _module(
        tmp_path,
        "a",
        """
        def f(x):
            return x + 1
    """,
    )
    b = _module(
        tmp_path,
        "b",
        '''
        def f(x):
            """Adds one."""
            # a comment
            return (x +
                    1)
    ''',
    )
    c = _module(
        tmp_path,
        "c",
        """
        def f(x):
            return x + 2
    """,
    )
    assert code_hash(a.f) == code_hash(b.f)
    assert code_hash(a.f) != code_hash(c.f)


def test_code_hash_follows_same_module_helpers(tmp_path: Path) -> None:
    one = _module(
        tmp_path,
        "one",
        """
        SCALE = 2
        def helper(x):
            return x * SCALE
        def f(x):
            return helper(x)
    """,
    )
    two = _module(
        tmp_path,
        "two",
        """
        SCALE = 3
        def helper(x):
            return x * SCALE
        def f(x):
            return helper(x)
    """,
    )
    three = _module(
        tmp_path,
        "three",
        """
        SCALE = 2
        def helper(x):
            return x * SCALE + 0
        def f(x):
            return helper(x)
    """,
    )
    assert code_hash(one.f) != code_hash(two.f)
    assert code_hash(one.f) != code_hash(three.f)


def test_file_digest_covers_folders(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("1")
    before = file_digest(folder)
    (folder / "a.txt").write_text("2")
    assert file_digest(folder) != before
    (folder / "a.txt").write_text("1")
    assert file_digest(folder) == before


def test_unjsonable_parameter_is_named() -> None:
    with pytest.raises(ParameterError, match="'obj'"):
        param_fingerprint("step 's'", {"obj": object()})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(params=st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=4))
def test_cache_key_is_stable_and_order_independent(params: dict) -> None:
    reordered = dict(reversed(list(params.items())))
    fp1, fp2 = param_fingerprint("s", params), param_fingerprint("s", reordered)
    key1 = cache_key(code="c", params=fp1, inputs={"a": ("d1", "m@1"), "b": ("d2", "m@1")})
    key2 = cache_key(code="c", params=fp2, inputs={"b": ("d2", "m@1"), "a": ("d1", "m@1")})
    assert key1 == key2
    assert key1 != cache_key(code="c2", params=fp1, inputs={"a": ("d1", "m@1"), "b": ("d2", "m@1")})
    assert key1 != cache_key(code="c", params=fp1, inputs={"a": ("d1", "m@2"), "b": ("d2", "m@1")})
