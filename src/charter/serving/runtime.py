"""What a serving worker holds in memory: for each model, the compiled champion, challenger and
shadows with their validators, thresholds and traffic policy, kept in step with the registry.

Reload without downtime: ``refresh()`` reads one small signature per model (alias revisions and
the traffic-policy revision); only a model whose signature changed is rebuilt, off to the side,
and swapped in with one assignment, so requests in flight finish on the old one and no request
fails. A version that cannot be loaded (its artifact's hash does not match, say) is refused and
the last good runtime keeps serving; the failure is kept for ``/readyz`` and the metrics.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from charter.entities import AliasName, ModelVersion
from charter.errors import CharterError, NotFound
from charter.registry.service import Registry
from charter.serving.compiled import CompiledScorer, compile_model
from charter.serving.routing import TrafficPolicy
from charter.serving.validation import InputValidator
from charter.storage.schema import model_aliases, model_versions, models, traffic_policies

log = logging.getLogger("charter.serving")

DEFAULT_THRESHOLD = 0.5
DECISION_LABELS = ("approve", "decline")  # score below / at or above the threshold


@dataclass(frozen=True)
class ServedVersion:
    model: str
    version: int
    sha256: str
    scorer: CompiledScorer
    validator: InputValidator
    threshold: float

    def decide(self, score: float) -> str:
        return DECISION_LABELS[1] if score >= self.threshold else DECISION_LABELS[0]


@dataclass(frozen=True)
class ModelRuntime:
    name: str
    signature: tuple[Any, ...]
    policy: TrafficPolicy
    versions: dict[int, ServedVersion]
    accepted: frozenset[str] = frozenset()  # the features of every version served
    # A version is served by the generic scorer (the model's own ``predict_proba``, explained by
    # permutation sampling: milliseconds to tens of milliseconds a request). Set once at load:
    # the request path reads it on every request.
    slow: bool = False

    @property
    def champion(self) -> ServedVersion:
        return self.versions[self.policy.champion]


def compile_version(registry: Registry, v: ModelVersion) -> CompiledScorer:
    """The version's artifact (its sha256 checked before loading) compiled as the service
    serves it, with the version's reference profile as the explanations' background. A replay
    of a logged decision compiles through here too, so it scores as the service did."""
    model = registry.load_model(v.model_name, v.version)
    background = None
    if v.reference_profile_sha256 is not None:
        background = registry.reference_profile(v.model_name, v.version)
    return compile_model(model, [f.name for f in v.feature_schema], background=background)


@dataclass
class LoadFailure:
    model: str
    version: int | None
    error: str


@dataclass
class Runtime:
    registry: Registry
    models: dict[str, ModelRuntime] = field(default_factory=dict)
    failures: dict[str, LoadFailure] = field(default_factory=dict)
    _cache: dict[tuple[str, int, str], ServedVersion] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str) -> ModelRuntime:
        rt = self.models.get(name)
        if rt is None:
            raise NotFound(
                f"no model {name!r} is being served",
                field="name",
                remedy="check the name at /v1/models; a model is served once it has a champion",
            )
        return rt

    def _signatures(self) -> dict[str, tuple[Any, ...]]:
        with self.registry.db.read() as conn:
            rows = conn.execute(
                select(
                    models.c.name,
                    model_aliases.c.alias,
                    model_versions.c.version,
                    model_versions.c.artifact_sha256,
                    model_aliases.c.revision,
                )
                .join(model_aliases, model_aliases.c.model_id == models.c.id)
                .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
                .order_by(models.c.name, model_aliases.c.alias)
            ).all()
            traffic = {
                r.name: (r.challenger_share, r.salt, r.revision, r.canary_version, r.canary_share)
                for r in conn.execute(
                    select(
                        models.c.name,
                        traffic_policies.c.challenger_share,
                        traffic_policies.c.salt,
                        traffic_policies.c.revision,
                        traffic_policies.c.canary_version,
                        traffic_policies.c.canary_share,
                    ).join(traffic_policies, traffic_policies.c.model_id == models.c.id)
                )
            }
        sig: dict[str, list[Any]] = {}
        for r in rows:
            sig.setdefault(r.name, []).append((r.alias, r.version, r.artifact_sha256, r.revision))
        return {
            name: (tuple(entries), traffic.get(name))
            for name, entries in sig.items()
            if any(e[0] == AliasName.CHAMPION.value for e in entries)
        }

    def _served(self, name: str, version: int) -> ServedVersion:
        v = self.registry.get_version(name, version)
        key = (name, version, v.artifact_sha256)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        scorer = compile_version(self.registry, v)
        served = ServedVersion(
            model=name,
            version=version,
            sha256=v.artifact_sha256,
            scorer=scorer,
            validator=InputValidator(v.feature_schema),
            threshold=v.decision_threshold
            if v.decision_threshold is not None
            else DEFAULT_THRESHOLD,
        )
        self._cache[key] = served
        return served

    def _build(self, name: str, signature: tuple[Any, ...]) -> ModelRuntime:
        entries, traffic = signature
        by_alias = {alias: version for alias, version, _sha, _rev in entries}
        champion = by_alias[AliasName.CHAMPION.value]
        challenger = by_alias.get(AliasName.CHALLENGER.value)
        shadow = by_alias.get(AliasName.SHADOW.value)
        share, salt = (traffic[0], traffic[1]) if traffic else (0.0, "")
        canary, canary_share = (traffic[3], traffic[4]) if traffic else (None, 0.0)
        if canary is not None and (canary_share <= 0 or canary in (champion, challenger)):
            canary, canary_share = None, 0.0  # rolled back, promoted, or not started
        policy = TrafficPolicy(
            model=name,
            champion=champion,
            challenger=challenger,
            challenger_share=share if challenger is not None else 0.0,
            canary=canary,
            canary_share=canary_share if canary is not None else 0.0,
            shadows=tuple(
                v
                for v in ((shadow,) if shadow is not None else ())
                if v not in (champion, challenger, canary)
            ),
            salt=salt,
        )
        wanted = {champion, *policy.shadows}
        wanted |= {v for v in (challenger, canary) if v is not None}
        versions = {v: self._served(name, v) for v in sorted(wanted)}
        accepted = frozenset(n for s in versions.values() for n in s.validator.names)
        slow = any(v.scorer.kind == "generic" for v in versions.values())
        return ModelRuntime(name, signature, policy, versions, accepted, slow)

    def refresh(self) -> list[str]:
        """Bring every model in step with the registry; returns the names that changed."""
        with self._lock:
            changed = []
            current = self._signatures()
            for name, sig in current.items():
                old = self.models.get(name)
                if old is not None and old.signature == sig:
                    continue
                try:
                    self.models[name] = self._build(name, sig)
                    self.failures.pop(name, None)
                    changed.append(name)
                except CharterError as e:
                    self.failures[name] = LoadFailure(name, None, str(e))
                    log.error("model %s not reloaded, the last good one keeps serving: %s", name, e)
            for name in list(self.models):
                if name not in current:
                    del self.models[name]
                    changed.append(name)
            return changed
