"""The registry's contract, run on every backend (SQLite here, PostgreSQL in CI)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from charter.entities import FeatureType, Stage
from charter.errors import (
    AlreadyExists,
    ArtifactIntegrityError,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    UnsafeArtifact,
)
from charter.registry import formats
from charter.registry.service import Registry
from charter.storage.artifacts import ArtifactStore

from helpers import approved_version, create_model, log_version, training_frame


def test_inventory_fields_and_review_schedule(registry: Registry, people, clock) -> None:
    create_model(
        registry,
        people.dev,
        upstream=["bureau", "core"],
        downstream=["los"],
        tags={"portfolio": "cards"},
        last_review="2025-10-01",
    )
    m = registry.get_model("pd-model")
    assert m.risk_tier.value == "high" and m.review_cadence_months == 12
    assert m.upstream == ("bureau", "core") and m.downstream == ("los",)
    assert m.next_review == date(2026, 10, 1)
    assert m.review_overdue  # the clock says 2026-11-22
    assert m.status == "development" and m.tags == {"portfolio": "cards"}
    registry.record_review(people.val, "pd-model", "2026-11-20")
    m = registry.get_model("pd-model")
    assert m.next_review == date(2027, 11, 20) and not m.review_overdue
    create_model(registry, people.dev, name="low-model", risk_tier="low")
    assert registry.get_model("low-model").review_cadence_months == 36


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"risk_tier": "extreme"}, "risk_tier"),
        ({"purpose": "  "}, "purpose"),
        ({"owner": ""}, "owner"),
        ({"review_cadence_months": 0}, "review_cadence_months"),
        ({"last_review": "22/11/2026"}, "last_review"),
    ],
)
def test_bad_model_fields_name_the_field_and_write_nothing(
    registry: Registry, people, overrides, field
) -> None:
    before = len(registry.audit_log())
    with pytest.raises(InvalidArgument) as e:
        create_model(registry, people.dev, **overrides)
    assert e.value.field == field and e.value.remedy
    assert registry.list_models() == [] and len(registry.audit_log()) == before


def test_bad_model_name_and_duplicates(registry: Registry, people) -> None:
    with pytest.raises(InvalidArgument) as e:
        create_model(registry, people.dev, name="Bad Name!")
    assert e.value.field == "name"
    create_model(registry, people.dev)
    with pytest.raises(AlreadyExists):
        create_model(registry, people.dev)


def test_log_model_captures_lineage(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    v = log_version(registry, people.dev)
    assert v.version == 1 and v.stage is Stage.DEVELOPMENT and v.author == "dana"
    assert len(v.artifact_sha256) == 64 and v.artifact_format == "skops"
    assert [f.name for f in v.feature_schema] == ["income", "age"]
    age = v.feature_schema[1]
    assert age.type is FeatureType.INTEGER and 18 <= age.minimum <= age.maximum < 80
    assert v.training_data is not None and v.training_data.rows == 200
    assert v.training_data.dataset_id == "synthetic-0" and len(v.training_data.content_hash) == 64
    assert v.hyperparameters["C"] == 1.0 and v.seeds == {"random_state": 0}
    assert v.metrics == {"auc": 0.75}
    assert v.environment["packages"]["scikit-learn"]
    assert v.environment["python"].startswith("3.")
    assert v.training_seconds is not None and v.training_seconds >= 0
    assert log_version(registry, people.dev, seed=1).version == 2
    # The same data gives the same hash; other data another one.
    again = log_version(registry, people.dev, seed=0)
    assert again.training_data.content_hash == v.training_data.content_hash
    assert registry.get_version("pd-model", 2).training_data.content_hash != (
        v.training_data.content_hash
    )
    event = registry.audit_log(action="version.registered")[0]
    assert event.payload["artifact_sha256"] == v.artifact_sha256


def test_loaded_model_predicts_like_the_original(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    X, y = training_frame()
    model = LogisticRegression().fit(X[["income", "age"]], y)
    registry.log_model(people.dev, "pd-model", model, X=X[["income", "age"]], y=y, dataset_id="d")
    loaded = registry.load_model("pd-model", 1)
    np.testing.assert_array_equal(
        loaded.predict_proba(X[["income", "age"]]), model.predict_proba(X[["income", "age"]])
    )


def test_full_lifecycle_by_three_people(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    v = approved_version(registry, people.dev, people.val, people.app)
    assert v.stage is Stage.APPROVED
    a = registry.set_alias(people.app, "pd-model", v.version, "champion", expected=None)
    assert a.revision == 1
    v = registry.get_version("pd-model", 1)
    assert v.stage is Stage.DEPLOYED and v.aliases == ("champion",)
    m = registry.get_model("pd-model")
    assert m.status == "production" and m.champion_version == 1
    actions = [e.action for e in registry.audit_log(model_name="pd-model")]
    assert actions == [
        "model.created",
        "version.registered",
        "validation.gates_run",
        "version.submit",
        "version.validated",
        "version.approve",
        "version.approval_decided",
        "alias.set",
    ]
    assert registry.verify_audit().ok


def test_state_machine_refuses_skips(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    v = log_version(registry, people.dev)
    with pytest.raises(TransitionNotAllowed) as e:
        registry.transition(people.app, "pd-model", v.version, "approved")
    assert "development to approved" in e.value.message
    with pytest.raises(TransitionNotAllowed) as e:
        registry.transition(people.dev, "pd-model", v.version, "deployed")
    assert "champion" in e.value.message
    with pytest.raises(InvalidArgument):
        registry.transition(people.dev, "pd-model", v.version, "production")
    with pytest.raises(NotFound):
        registry.transition(people.dev, "pd-model", 9, "validation")
    assert registry.get_version("pd-model", 1).stage is Stage.DEVELOPMENT


def test_approval_needs_an_independent_passing_validation(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    v = log_version(registry, people.dev)
    registry.transition(people.dev, "pd-model", v.version, "validation")
    with pytest.raises(TransitionNotAllowed) as e:
        registry.transition(people.app, "pd-model", v.version, "approved")
    assert "independent validator" in e.value.message
    registry.record_validation(people.val, "pd-model", 1, outcome="fail", summary="AUC too low")
    with pytest.raises(TransitionNotAllowed):
        registry.transition(people.app, "pd-model", v.version, "approved")
    denied = registry.audit_log(action="denied")
    assert len(denied) == 2 and denied[0].payload["code"] == "transition_not_allowed"


def test_developer_cannot_validate_or_approve_own_version_even_with_the_roles(
    registry: Registry, people
) -> None:
    ident = registry.identity
    ident.create_user(people.admin, "sam", ["developer", "validator", "approver"])
    sam = ident.actor("sam")
    create_model(registry, sam)
    v = log_version(registry, sam)
    registry.transition(sam, "pd-model", v.version, "validation")
    with pytest.raises(PermissionDenied) as e:
        registry.record_validation(sam, "pd-model", 1, outcome="pass", summary="mine is fine")
    assert "developed this version" in e.value.message
    registry.record_validation(people.val, "pd-model", 1, outcome="pass", summary="ok")
    with pytest.raises(PermissionDenied) as e:
        registry.transition(sam, "pd-model", 1, "approved")
    assert "segregation of duties" in e.value.message
    # The validator cannot approve what they validated, even holding the approver role.
    ident.set_roles(people.admin, "victor", ["validator", "approver"])
    victor = ident.actor("victor")
    with pytest.raises(PermissionDenied) as e:
        registry.transition(victor, "pd-model", 1, "approved")
    assert "validated this version" in e.value.message
    assert registry.get_version("pd-model", 1).stage is Stage.VALIDATION
    denied = registry.audit_log(action="denied")
    assert [d.actor for d in denied] == ["sam", "sam", "victor"]
    assert all(d.payload["code"] == "permission_denied" for d in denied)
    registry.transition(people.app, "pd-model", 1, "approved")


def test_developer_cannot_deploy_own_version(registry: Registry, people) -> None:
    ident = registry.identity
    ident.create_user(people.admin, "sam", ["developer", "approver"])
    sam = ident.actor("sam")
    create_model(registry, sam)
    v = log_version(registry, sam)
    registry.transition(sam, "pd-model", v.version, "validation")
    registry.record_validation(people.val, "pd-model", 1, outcome="pass", summary="ok")
    registry.transition(people.app, "pd-model", 1, "approved")
    with pytest.raises(PermissionDenied):
        registry.set_alias(sam, "pd-model", 1, "champion")
    assert registry.get_model("pd-model").champion_version is None
    assert registry.audit_log(action="denied")[-1].payload["attempted"] == "alias.set.champion"


def test_break_glass_is_admin_only_needs_justification_and_is_audited(
    registry: Registry, people
) -> None:
    create_model(registry, people.dev)
    log_version(registry, people.dev)
    registry.transition(people.dev, "pd-model", 1, "validation")
    with pytest.raises(PermissionDenied):  # an approver is not an admin
        registry.transition(people.app, "pd-model", 1, "approved", justification="x" * 40)
    with pytest.raises(InvalidArgument) as e:
        registry.transition(people.admin, "pd-model", 1, "approved", justification="because")
    assert e.value.field == "justification"
    v = registry.transition(
        people.admin,
        "pd-model",
        1,
        "approved",
        justification="Emergency fix for incident INC-4711, agreed by the CRO on the bridge call",
    )
    assert v.stage is Stage.APPROVED
    override = registry.audit_log(action="override")
    assert len(override) == 1 and "INC-4711" in override[0].payload["justification"]
    approve = registry.audit_log(action="version.approve")[0]
    assert approve.payload["override"] is True and approve.role == "admin"
    # Break glass never opens an edge the state machine does not have.
    with pytest.raises(TransitionNotAllowed):
        registry.transition(people.admin, "pd-model", 1, "development", justification="y" * 40)


def test_alias_rules_and_optimistic_concurrency(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    approved_version(registry, people.dev, people.val, people.app, seed=0)
    approved_version(registry, people.dev, people.val, people.app, seed=1)
    registry.set_alias(people.app, "pd-model", 1, "champion", expected=None)
    with pytest.raises(Conflict) as e:
        registry.set_alias(people.app, "pd-model", 2, "champion", expected=None)
    assert e.value.details["holder"] == 1
    registry.set_alias(people.app, "pd-model", 2, "challenger")
    a = registry.set_alias(people.app, "pd-model", 2, "champion", expected=1)
    assert a.revision == 2
    assert registry.get_version("pd-model", 2).aliases == ("champion",)  # challenge over
    with pytest.raises(TransitionNotAllowed):
        registry.set_alias(people.app, "pd-model", 2, "champion")
    # Shadow accepts a version in validation; champion does not.
    log_version(registry, people.dev, seed=2)
    registry.transition(people.dev, "pd-model", 3, "validation")
    registry.set_alias(people.dev, "pd-model", 3, "shadow")
    with pytest.raises(TransitionNotAllowed):
        registry.set_alias(people.app, "pd-model", 3, "champion")
    with pytest.raises(TransitionNotAllowed):  # retiring needs the alias gone
        registry.transition(people.app, "pd-model", 2, "retired")
    registry.set_alias(people.app, "pd-model", 1, "champion", expected=2)  # rollback
    assert registry.transition(people.app, "pd-model", 2, "retired").stage is Stage.RETIRED
    assert registry.verify_audit().ok


def test_who_was_champion_at_time_t(registry: Registry, people, clock) -> None:
    create_model(registry, people.dev)
    approved_version(registry, people.dev, people.val, people.app, seed=0)
    approved_version(registry, people.dev, people.val, people.app, seed=1)
    t0 = clock.now
    clock.advance(timedelta(days=1))
    registry.set_alias(people.app, "pd-model", 1, "champion")
    t1 = clock.now
    clock.advance(timedelta(days=30))
    registry.set_alias(people.app, "pd-model", 2, "champion")
    t2 = clock.now
    clock.advance(timedelta(days=2))
    registry.set_alias(people.app, "pd-model", 1, "champion")
    t3 = clock.now
    assert registry.alias_holder_at("pd-model", "champion", t0) is None
    assert registry.alias_holder_at("pd-model", "champion", t1) == 1
    assert registry.alias_holder_at("pd-model", "champion", t1 + timedelta(days=15)) == 1
    assert registry.alias_holder_at("pd-model", "champion", t2) == 2
    assert registry.alias_holder_at("pd-model", "champion", t3) == 1
    registry.remove_alias(people.app, "pd-model", "champion")
    assert registry.alias_holder_at("pd-model", "champion", clock.now + timedelta(1)) is None
    # The clock steps a second per read, so t3 is when the removal happened.
    assert registry.alias_holder_at("pd-model", "champion", t3 - timedelta(seconds=1)) == 1
    with pytest.raises(InvalidArgument):
        registry.alias_holder_at("pd-model", "champion", datetime(2026, 1, 1))


def test_flipped_artifact_byte_refuses_to_load(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    v = log_version(registry, people.dev)
    path = registry.artifacts.path_for(v.artifact_sha256)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError) as e:
        registry.load_model("pd-model", 1)
    assert v.artifact_sha256 in e.value.message


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_that_would_create_a_file_never_runs(
    registry: Registry, people, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil(marker), protocol=4))
    create_model(registry, people.dev)
    with pytest.raises(UnsafeArtifact):  # not without vouching for it
        registry.register_file(people.dev, "pd-model", evil, format="pickle")
    spec = log_version(registry, people.dev).feature_schema
    v = registry.register_file(
        people.dev, "pd-model", evil, format="pickle", allow_pickle=True, feature_schema=spec
    )
    assert v.source["pickle_vouched_by"] == "dana"
    with pytest.raises(UnsafeArtifact):  # loading a pickle needs an explicit opt-in
        registry.load_model("pd-model", v.version)
    assert not marker.exists()
    # A benign pickle swapped for the evil one on disk: the hash check stops it first.
    benign = tmp_path / "benign.pkl"
    benign.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    good = registry.register_file(
        people.dev,
        "pd-model",
        benign,
        format="pickle",
        allow_pickle=True,
        feature_schema=spec,
    )
    path = registry.artifacts.path_for(good.artifact_sha256)
    path.chmod(0o644)
    path.write_bytes(evil.read_bytes())
    with pytest.raises(ArtifactIntegrityError):
        registry.load_model("pd-model", good.version, allow_pickle=True)
    assert not marker.exists()


def test_register_skops_file_and_mlflow_directory(
    registry: Registry, people, tmp_path: Path
) -> None:
    X, y = training_frame()
    model = LogisticRegression().fit(X[["income", "age"]], y)
    f = tmp_path / "model.skops"
    f.write_bytes(formats.serialize_model(model).data)
    create_model(registry, people.dev)
    v = registry.register_file(people.dev, "pd-model", f, format="skops")
    assert [s.name for s in v.feature_schema] == ["income", "age"]
    assert v.source["schema_inferred_from"] == "feature_names"
    with pytest.raises(InvalidArgument) as e:
        registry.register_file(people.dev, "pd-model", f, format="onnx-ish")
    assert e.value.field == "format"

    mdir = tmp_path / "mlflow-model"
    mdir.mkdir()
    (mdir / "model.pkl").write_bytes(pickle.dumps(model, protocol=4))
    (mdir / "MLmodel").write_text(
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        "    model_path: model.pkl\n"
        "  sklearn:\n"
        "    pickled_model: model.pkl\n"
        "    serialization_format: cloudpickle\n"
        "    sklearn_version: 1.9.1\n"
        "mlflow_version: 2.17.0\n"
        "model_uuid: 0f1e2d3c\n"
        "run_id: 5a6b7c8d\n"
        "utc_time_created: '2026-11-01 10:00:00.000000'\n"
        "signature:\n"
        '  inputs: \'[{"name": "income", "type": "double"}, {"name": "age", "type": "long"}]\'\n'
        '  outputs: \'[{"type": "long"}]\'\n'
    )
    with pytest.raises(UnsafeArtifact):
        registry.register_mlflow(people.dev, "pd-model", mdir)
    mv = registry.register_mlflow(people.dev, "pd-model", mdir, allow_pickle=True)
    assert mv.source["kind"] == "mlflow" and mv.source["run_id"] == "5a6b7c8d"
    assert [(s.name, s.type) for s in mv.feature_schema] == [
        ("income", FeatureType.NUMERIC),
        ("age", FeatureType.INTEGER),
    ]
    loaded = registry.load_model("pd-model", mv.version, allow_pickle=True)
    np.testing.assert_array_equal(
        loaded.predict_proba(X[["income", "age"]]), model.predict_proba(X[["income", "age"]])
    )


def test_retired_model_takes_no_versions(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    with pytest.raises(PermissionDenied):
        registry.retire_model(people.dev, "pd-model", reason="replaced")
    m = registry.retire_model(people.app, "pd-model", reason="replaced by the 2027 scorecard")
    assert m.status == "retired" and not m.review_overdue
    with pytest.raises(TransitionNotAllowed):
        log_version(registry, people.dev)


def test_open_refuses_an_uninitialised_store(tmp_path: Path) -> None:
    from charter.config import Settings
    from charter.errors import StoreNotInitialized

    with pytest.raises(StoreNotInitialized) as e:
        Registry.open(Settings.for_home(tmp_path / "empty"))
    assert "charter init" in (e.value.remedy or "")


def test_artifacts_are_content_addressed_across_versions(
    registry: Registry, people, tmp_path: Path
) -> None:
    X, y = training_frame()
    f = tmp_path / "model.skops"
    f.write_bytes(formats.serialize_model(LogisticRegression().fit(X[["income", "age"]], y)).data)
    create_model(registry, people.dev)
    a = registry.register_file(people.dev, "pd-model", f, format="skops")
    b = registry.register_file(people.dev, "pd-model", f, format="skops")
    assert a.artifact_sha256 == b.artifact_sha256 and (a.version, b.version) == (1, 2)
    assert isinstance(registry.artifacts, ArtifactStore)
    files = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert files == [registry.artifacts.path_for(a.artifact_sha256)]


def test_clock_now_is_used_for_times(registry: Registry, people, clock) -> None:
    create_model(registry, people.dev)
    m = registry.get_model("pd-model")
    assert m.created_at.date() == date(2026, 11, 22) and m.created_at.tzinfo is UTC


def test_reference_profile_is_stored_with_the_version(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    v = log_version(registry, people.dev)
    assert v.reference_profile_sha256 is not None
    profile = registry.reference_profile("pd-model", v.version)
    assert set(profile.columns) == {"income", "age"} and profile.n_rows == 200
    event = registry.audit_log(action="version.registered")[0]
    assert event.payload["reference_profile_sha256"] == v.reference_profile_sha256
    X, _ = training_frame(seed=0)
    acc = profile.accumulator().update(X[["income", "age"]])
    from charter.stats.compare import compare

    assert compare(profile, acc).flagged == ()


def test_migrations_upgrade_an_older_store(database_url: str) -> None:
    from charter.errors import StoreNotInitialized
    from charter.storage.db import Database, head_revision

    db = Database(database_url)
    try:
        assert db.upgrade("0001") == (None, "0001")
        with pytest.raises(StoreNotInitialized) as e:
            db.check_schema()
        assert "revision 0001" in e.value.message
        assert db.upgrade() == ("0001", head_revision())
        db.check_schema()
    finally:
        db.dispose()
