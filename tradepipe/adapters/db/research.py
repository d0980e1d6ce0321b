"""Reads and writes of ``strategy_variants``, ``strategy_variant_events`` and ``ml_models``.

A generation's evaluations and pool changes are written by :func:`record_generation` in the caller's
transaction: either every row of the generation is committed or none (an interrupted generation leaves
the pool as it was, and the next run evaluates it again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tradepipe.adapters.db.models import MlModelRow, StrategyVariantEventRow, StrategyVariantRow

STATUSES = ("candidate", "evaluated", "promoted", "retired")


def variant_by_name(session: Session, name: str) -> StrategyVariantRow | None:
    return session.scalars(select(StrategyVariantRow).where(StrategyVariantRow.name == name)).first()


def list_variants(session: Session, status: str | None = None, limit: int = 100) -> list[StrategyVariantRow]:
    query = select(StrategyVariantRow).order_by(StrategyVariantRow.deflated_sharpe.desc().nulls_last(), StrategyVariantRow.id)
    if status is not None:
        query = query.where(StrategyVariantRow.status == status)
    return list(session.scalars(query.limit(limit)))


def pool_members(session: Session) -> list[StrategyVariantRow]:
    return list_variants(session, "promoted", limit=10_000)


def variant_events(session: Session, variant_id: int) -> list[StrategyVariantEventRow]:
    return list(session.scalars(select(StrategyVariantEventRow).where(StrategyVariantEventRow.variant_id == variant_id).order_by(StrategyVariantEventRow.id)))


def add_candidates(session: Session, candidates: Iterable[Mapping[str, Any]], generation: int) -> list[StrategyVariantRow]:
    """Insert the candidates not yet known by name (``name``, ``family``, ``parameters``, ``origin``,
    ``description``); returns every candidate's row."""
    rows = []
    for candidate in candidates:
        row = variant_by_name(session, candidate["name"])
        if row is None:
            row = StrategyVariantRow(
                name=candidate["name"], family=candidate["family"], parameters=dict(candidate["parameters"]),
                origin=candidate["origin"], description=candidate.get("description", ""), status="candidate",
                generation=generation, reason="proposed", metrics={},
            )
            session.add(row)
        rows.append(row)
    session.flush()
    return rows


def set_status(session: Session, row: StrategyVariantRow, action: str, status: str, reason: str, when: datetime, actor: str = "loop") -> None:
    """Change a variant's status and record the change as an event row."""
    row.status, row.reason, row.updated_at = status, reason, when
    session.add(StrategyVariantEventRow(variant_id=row.id, action=action, status=status, reason=reason, actor=actor, at=when))


def record_evaluations(session: Session, evaluations: Sequence[Mapping[str, Any]], when: datetime) -> None:
    """Store each evaluation (``name``, ``metrics``, ``deflated_sharpe``, ``pbo``, ``trials``); a
    candidate becomes ``evaluated`` (a pool member keeps its status and gets fresh figures)."""
    for evaluation in evaluations:
        row = variant_by_name(session, evaluation["name"])
        if row is None:
            raise KeyError(f"variant {evaluation['name']!r} is not recorded")
        row.metrics = dict(evaluation["metrics"])
        row.deflated_sharpe, row.pbo, row.trials = evaluation["deflated_sharpe"], evaluation["pbo"], evaluation["trials"]
        if row.status == "candidate":
            set_status(session, row, "evaluate", "evaluated", f"deflated Sharpe {row.deflated_sharpe:.3f} over {row.trials} trials", when)


def apply_pool_changes(session: Session, changes: Iterable[Any], when: datetime, actor: str = "loop") -> None:
    """``selection.PoolChange`` rows: promote, retire, reject (a rejected candidate stays evaluated; its
    reject is an event too, so every candidate of a selection has its decision on record)."""
    for change in changes:
        row = variant_by_name(session, change.name)
        if row is None:
            raise KeyError(f"variant {change.name!r} is not recorded")
        if change.action == "promote":
            set_status(session, row, "promote", "promoted", change.reason, when, actor)
        elif change.action == "retire":
            set_status(session, row, "retire", "retired", change.reason, when, actor)
        else:
            set_status(session, row, "reject", row.status, change.reason, when, actor)


def newest_generation(session: Session) -> int | None:
    return session.scalar(select(func.max(StrategyVariantRow.generation)))


def generation_rows(session: Session, generation: int) -> list[StrategyVariantRow]:
    """The candidates proposed in ``generation``, by name."""
    return list(session.scalars(select(StrategyVariantRow).where(StrategyVariantRow.generation == generation).order_by(StrategyVariantRow.name)))


def trials_through(session: Session, generation: int) -> int:
    """Distinct variants tried up to and including ``generation``: the deflated Sharpe's trial count
    (a variant proposed again in a later generation counts once)."""
    return int(session.scalar(select(func.count(StrategyVariantRow.id)).where(StrategyVariantRow.generation <= generation)) or 0)


# A selection ends with one of these for every candidate (a candidate promoted and replaced within the
# same selection ends retired).
DECISIONS = ("promote", "reject", "retire")


def undecided(session: Session, generation: int) -> list[StrategyVariantRow]:
    """Candidates of ``generation`` whose newest event is not a selection decision: the generation is
    still open (its selection has not been committed) while this is not empty."""
    open_rows = []
    for row in generation_rows(session, generation):
        last = session.scalars(
            select(StrategyVariantEventRow.action).where(StrategyVariantEventRow.variant_id == row.id).order_by(StrategyVariantEventRow.id.desc()).limit(1)
        ).first()
        if last not in DECISIONS:
            open_rows.append(row)
    return open_rows


def repropose(session: Session, row: StrategyVariantRow, generation: int, when: datetime) -> None:
    """A variant tried before, proposed again: it joins ``generation`` as a candidate to be re-evaluated on
    the new window (a pool member keeps its status: it is measured again, never demoted by a proposal)."""
    row.generation, row.pbo = generation, None
    if row.status != "promoted":
        set_status(session, row, "propose", "candidate", f"proposed again in generation {generation}", when)


def record_model(session: Session, **values: Any) -> MlModelRow:
    row = MlModelRow(**values)
    session.add(row)
    session.flush()
    return row


def promoted_model(session: Session, kind: str) -> MlModelRow | None:
    return session.scalars(
        select(MlModelRow).where(MlModelRow.kind == kind, MlModelRow.status == "promoted").order_by(MlModelRow.id.desc()).limit(1)
    ).first()


def list_models(session: Session, limit: int = 50) -> list[MlModelRow]:
    return list(session.scalars(select(MlModelRow).order_by(MlModelRow.id.desc()).limit(limit)))


__all__ = [
    "STATUSES",
    "DECISIONS",
    "add_candidates",
    "apply_pool_changes",
    "generation_rows",
    "list_models",
    "list_variants",
    "newest_generation",
    "pool_members",
    "promoted_model",
    "record_evaluations",
    "record_model",
    "repropose",
    "set_status",
    "trials_through",
    "undecided",
    "variant_by_name",
    "variant_events",
]
