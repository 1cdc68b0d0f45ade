"""The search space: one definition for Optuna (local) and Katib (clusters).

A :class:`SearchSpace` names the objective, the parameters and their ranges, the algorithm and
the budget. It is data (``search-space.yaml`` beside this module is the default) validated up
front, so a bad range fails before any trial runs, locally or on a cluster.
"""

from __future__ import annotations

from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from workloads.pipelines.model import TrainParams

Algorithm = Literal["random", "tpe", "grid"]
TRAIN_PARAMETERS = tuple(f.name for f in fields(TrainParams) if f.name != "checkpoint_every")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Model):
    """One tunable hyperparameter.

    Attributes:
        name: A train-step hyperparameter.
        type: ``double``, ``int`` or ``categorical``.
        min: Lower bound (numeric types).
        max: Upper bound (numeric types).
        step: Grid step (numeric types; required by the grid algorithm).
        log: Sample on a log scale (numeric types, positive bounds).
        values: Choices (categorical).
    """

    name: str
    type: Literal["double", "int", "categorical"]
    min: float | None = None
    max: float | None = None
    step: float | None = None
    log: bool = False
    values: list[str | int | float] | None = None

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        if self.name not in TRAIN_PARAMETERS:
            raise ValueError(
                f"parameter {self.name!r} is not a train hyperparameter {list(TRAIN_PARAMETERS)}"
            )
        if self.type == "categorical":
            if not self.values:
                raise ValueError(f"categorical parameter {self.name!r} needs non-empty 'values'")
            if len(set(map(str, self.values))) != len(self.values):
                raise ValueError(f"parameter {self.name!r} has duplicate values")
            if self.min is not None or self.max is not None:
                raise ValueError(f"categorical parameter {self.name!r} takes 'values', not min/max")
            return self
        if self.values is not None:
            raise ValueError(f"{self.type} parameter {self.name!r} takes min/max, not 'values'")
        if self.min is None or self.max is None:
            raise ValueError(f"{self.type} parameter {self.name!r} needs 'min' and 'max'")
        if self.min >= self.max:
            raise ValueError(f"parameter {self.name!r}: min {self.min} must be below max {self.max}")
        if self.log and self.min <= 0:
            raise ValueError(f"parameter {self.name!r}: a log scale needs min > 0, got {self.min}")
        if self.type == "int" and (self.min != int(self.min) or self.max != int(self.max)):
            raise ValueError(f"int parameter {self.name!r} needs integer bounds")
        if self.step is not None and (self.step <= 0 or self.step > self.max - self.min):
            raise ValueError(f"parameter {self.name!r}: step must be in (0, max - min]")
        if self.log and self.step is not None:
            raise ValueError(f"parameter {self.name!r}: 'log' and 'step' do not combine")
        return self

    def grid(self) -> list[Any]:
        """Every value of a discrete parameter (categorical, or numeric with a step)."""
        if self.values is not None:
            return list(self.values)
        if self.step is None or self.min is None or self.max is None:
            raise ValueError(f"parameter {self.name!r} has no grid: give it a 'step'")
        count = int(round((self.max - self.min) / self.step)) + 1
        points = [
            self.min + i * self.step for i in range(count) if self.min + i * self.step <= self.max + 1e-12
        ]
        return [int(round(p)) for p in points] if self.type == "int" else [float(p) for p in points]


class Objective(_Model):
    """What a trial is scored on."""

    metric: str = "val_roc_auc"
    direction: Literal["maximize", "minimize"] = "maximize"
    goal: float | None = None
    additional_metrics: list[str] = Field(default_factory=list)


class Budget(_Model):
    """How many trials, how many at once, how many may fail."""

    max_trials: int = Field(default=10, ge=1)
    parallel_trials: int = Field(default=1, ge=1)
    max_failed_trials: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.parallel_trials > self.max_trials:
            raise ValueError("parallel_trials cannot exceed max_trials")
        return self


class SearchSpace(_Model):
    """Objective, parameters, algorithm and budget of a tuning study."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    objective: Objective = Field(default_factory=Objective)
    algorithm: Algorithm = "tpe"
    seed: int = 0
    budget: Budget = Field(default_factory=Budget)
    cv_folds: int = Field(default=3, ge=2, le=10)
    parameters: list[Parameter] = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SearchSpace:
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameters {duplicates} are defined more than once")
        unknown = sorted(set(self.fixed) - set(TRAIN_PARAMETERS))
        if unknown:
            raise ValueError(f"fixed values {unknown} are not train hyperparameters {list(TRAIN_PARAMETERS)}")
        overlap = sorted(set(self.fixed) & set(names))
        if overlap:
            raise ValueError(f"{overlap} are both fixed and searched")
        if self.algorithm == "grid":
            for parameter in self.parameters:
                parameter.grid()  # raises for a parameter without a grid
        return self

    def with_budget(self, max_trials: int | None = None) -> SearchSpace:
        """A copy with another trial budget (parallelism capped to it)."""
        if max_trials is None:
            return self
        budget = self.budget.model_copy(
            update={"max_trials": max_trials, "parallel_trials": min(self.budget.parallel_trials, max_trials)}
        )
        return self.model_copy(update={"budget": budget})

    def train_params(self, sampled: dict[str, Any]) -> TrainParams:
        """Hyperparameters of one trial: fixed values plus the sampled ones."""
        values = {**self.fixed, **sampled}
        return TrainParams(**{k: values[k] for k in TRAIN_PARAMETERS if k in values}, checkpoint_every=0)


def load_space(path: str | Path | None = None) -> SearchSpace:
    """Load a search space from YAML; the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("workloads.tuning").joinpath("search-space.yaml").read_text()
    else:
        text = Path(path).read_text()
    return SearchSpace.model_validate(yaml.safe_load(text))
