"""``init_base_operator``: an operator built with it is the operator ``super().__init__`` builds.

Two operators with the same parameters, one calling ``super().__init__(**kwargs)`` (two passes of Airflow's
``apply_defaults``) and one ``init_base_operator(self, **kwargs)`` (one), are built in DAGs with the same
``default_args`` and compared attribute by attribute, then as Airflow serializes them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG, BaseOperator, Context

from tidbops_airflow.operators import common
from tidbops_airflow.operators.common import init_base_operator

pytestmark = pytest.mark.unit

OPERATORS = Path(common.__file__).parent


def alert(context: Any) -> None:  # a failure callback, compared by identity
    pass


class Chained(BaseOperator):
    template_fields: Sequence[str] = ("target",)

    def __init__(self, *, cluster: str, target: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster
        self.target = target

    def execute(self, context: Context) -> None:
        pass


class Flat(BaseOperator):
    template_fields: Sequence[str] = ("target",)

    def __init__(self, *, cluster: str, target: str | None = None, **kwargs: Any) -> None:
        init_base_operator(self, kwargs, cluster=cluster, target=target)

    def execute(self, context: Context) -> None:
        pass


DEFAULT_ARGS = {
    "owner": "dba-team",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "on_failure_callback": [alert],
}


def build(cls: type[BaseOperator], **task_kwargs: Any) -> BaseOperator:
    with DAG(
        "d",
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        default_args=DEFAULT_ARGS,
        params={"p": 1},
    ) as dag:
        first = cls(task_id="first", cluster="c1")
        op = cls(task_id="op", **task_kwargs)
        first >> op
    assert dag.get_task("op") is op
    return op


def state(op: BaseOperator) -> dict[str, Any]:
    skip = {"_dag", "task_group", "_BaseOperator__init_kwargs", "_log"}
    out = {k: v for k, v in vars(op).items() if k not in skip}
    out["params"] = {k: op.params[k] for k in op.params}
    out["dag_id"] = op.dag_id
    out["init_kwargs"] = {k: v for k, v in op._BaseOperator__init_kwargs.items() if k not in ("dag", "task_group")}  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize(
    "task_kwargs",
    [
        {"cluster": "c1"},
        {"cluster": "c1", "target": "t", "retries": 5, "owner": "other", "pool": "br_c1", "params": {"q": 2}},
        {"cluster": "c1", "default_args": {"retries": 0, "queue": "q2"}},
    ],
)
def test_flat_operator_matches_chained(task_kwargs: dict[str, Any]) -> None:
    flat, chained = build(Flat, **task_kwargs), build(Chained, **task_kwargs)
    assert state(flat) == state(chained)
    assert flat.on_failure_callback == [alert]
    assert flat.upstream_task_ids == {"first"}
    explicit = task_kwargs.get("default_args", {})
    assert flat.retries == task_kwargs.get("retries", explicit.get("retries", 2))


def test_flat_operator_serializes_like_chained() -> None:
    from airflow.serialization.serialized_objects import OperatorSerialization

    def serialized(op: BaseOperator) -> dict[str, Any]:
        data = OperatorSerialization.serialize_operator(op)
        return {k: v for k, v in data.items() if k not in ("_task_type", "task_type")}

    kwargs = {"cluster": "c1", "default_args": {"retries": 0}}
    assert serialized(build(Flat, **kwargs)) == serialized(build(Chained, **kwargs))


def test_flat_operator_refuses_what_chained_refuses() -> None:
    with pytest.raises(TypeError, match="Invalid arguments"):
        build(Flat, cluster="c1", not_an_argument=1)
    with pytest.raises(TypeError, match="missing keyword argument 'cluster'"):
        build(Flat)


def _fields_of(cls: type) -> list[str] | None:
    """The fields ``cls.__init__`` passes to ``init_base_operator`` (None: it does not call it)."""
    init = vars(cls).get("__init__")
    if init is None:
        return None
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(init))))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "init_base_operator":
            return [k.arg for k in node.keywords if k.arg]
    return None


def test_every_user_comes_straight_after_base_operator() -> None:
    """``init_base_operator`` skips every ``__init__`` between the class and BaseOperator's, and stores the
    fields without BaseOperator's ``__setattr__``: there must be no such ``__init__``, and no field that
    ``__setattr__`` would convert or a descriptor would take."""
    users = []
    for path in sorted(OPERATORS.glob("*.py")):
        module = importlib.import_module(f"tidbops_airflow.operators.{path.stem}")
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and cls.__module__ == module.__name__):
                continue
            fields = _fields_of(cls)
            if fields is None:
                continue
            users.append(cls)
            after = next(k for k in cls.__mro__[1:] if "__init__" in vars(k))
            assert after is BaseOperator, f"{cls.__name__}: {after.__name__}.__init__ would be skipped"
            for name in fields:
                assert not hasattr(cls, f"_convert_{name}"), f"{cls.__name__}.{name} has a converter"
                static = inspect.getattr_static(cls, name, None)
                assert not hasattr(static, "__set__"), f"{cls.__name__}.{name} is a descriptor"
    assert len(users) >= 20  # the per-cluster pipelines' operators
