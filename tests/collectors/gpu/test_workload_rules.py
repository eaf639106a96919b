"""Workload rules: validation messages and first-match resolution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collectors.gpu.procinfo import ProcessInfo
from collectors.gpu.workload_rules import (
    DEFAULT_RULES,
    MATCH_KINDS,
    ProcessAttributor,
    Rule,
    dominant_workload,
    env_keys,
    resolve_workload,
    validate_rules,
)


def proc(**kw) -> ProcessInfo:
    fields = {"pid": 1, "user": "alice", "command": "python train.py", "env": {}}
    fields.update(kw)
    return ProcessInfo(**fields)


# --------------------------------------------------------------------------- defaults


def test_default_rules_env_then_slurm_then_namespace_then_pod():
    everything = proc(
        env={"GPULEDGER_WORKLOAD": "llm-finetune"},
        slurm_job="bert",
        namespace="team-vision",
        pod="eval-7d9f",
    )
    assert resolve_workload(everything) == "llm-finetune"
    assert resolve_workload(proc(slurm_job="bert", namespace="team-vision")) == "bert"
    assert resolve_workload(proc(namespace="team-vision", pod="eval-7d9f")) == "team-vision"
    assert resolve_workload(proc(pod="eval-7d9f")) == "eval-7d9f"
    assert resolve_workload(proc()) == "unattributed:alice"


def test_none_and_empty_rules_mean_the_defaults():
    assert [(r.match, r.key) for r in validate_rules(None)] == [
        (r["match"], r.get("key")) for r in DEFAULT_RULES
    ]
    assert validate_rules([]) == validate_rules(None)
    assert env_keys(validate_rules(None)) == ["GPULEDGER_WORKLOAD"]


# --------------------------------------------------------------------------- each match kind


@pytest.mark.parametrize(
    ("rule", "info", "workload"),
    [
        # the field value itself
        ({"match": "env", "key": "TEAM"}, proc(env={"TEAM": "vision"}), "vision"),
        ({"match": "slurm_job"}, proc(slurm_job="123456"), "123456"),
        ({"match": "k8s_pod"}, proc(pod="trainer-0"), "trainer-0"),
        ({"match": "container"}, proc(container="3f4e" * 16), "3f4e" * 16),
        # group 1 of the pattern
        ({"match": "k8s_namespace", "pattern": "^team-(.*)$"}, proc(namespace="team-nlp"), "nlp"),
        ({"match": "k8s_pod", "pattern": r"^(.+)-\d+$"}, proc(pod="trainer-12"), "trainer"),
        (
            {"match": "cmdline", "pattern": r"--run-name[= ](\S+)"},
            proc(command="x --run-name=r7"),
            "r7",
        ),
        # the fixed workload
        ({"match": "user", "pattern": "^alice$", "workload": "research"}, proc(), "research"),
        (
            {"match": "cmdline", "pattern": "jupyter", "workload": "notebooks"},
            proc(command="/opt/conda/bin/python -m jupyter lab"),
            "notebooks",
        ),
        (
            {"match": "container", "pattern": "^3f4e", "workload": "c"},
            proc(container="3f4e99"),
            "c",
        ),
        # pattern without a group: the field value, when it is found
        ({"match": "user", "pattern": "^ali"}, proc(), "alice"),
    ],
)
def test_each_match_kind(rule, info, workload):
    assert resolve_workload(info, [rule]) == workload


@pytest.mark.parametrize(
    ("rule", "info"),
    [
        ({"match": "env", "key": "TEAM"}, proc(env={"TEAM": ""})),  # empty value
        ({"match": "env", "key": "TEAM"}, proc(env={"OTHER": "x"})),
        ({"match": "user", "pattern": "^bob$", "workload": "x"}, proc()),
        (
            {"match": "k8s_namespace", "pattern": "^team-(.*)$"},
            proc(namespace="team-"),
        ),  # empty group
        ({"match": "k8s_namespace", "pattern": "^team-(.*)$"}, proc(namespace=None)),
        ({"match": "container"}, proc(container=None)),
    ],
)
def test_non_matches_fall_through_to_unattributed(rule, info):
    assert resolve_workload(info, [rule]) == "unattributed:alice"


def test_first_matching_rule_wins_in_order():
    rules = [
        {"match": "user", "pattern": "^bob$", "workload": "bobs"},
        {"match": "cmdline", "pattern": "train", "workload": "training"},
        {"match": "user", "pattern": "^alice$", "workload": "research"},
    ]
    assert resolve_workload(proc(), rules) == "training"
    assert resolve_workload(proc(user="bob"), rules) == "bobs"
    assert resolve_workload(proc(command="bash"), rules) == "research"


def test_pattern_is_searched_not_anchored():
    assert (
        resolve_workload(
            proc(command="srun python finetune.py"),
            [{"match": "cmdline", "pattern": "finetune", "workload": "ft"}],
        )
        == "ft"
    )


def test_validated_rules_pass_through_and_keep_their_index():
    rules = validate_rules([{"match": "slurm_job"}, {"match": "env", "key": "W"}])
    assert [(r.index, r.match, r.key) for r in rules] == [(0, "slurm_job", None), (1, "env", "W")]
    assert validate_rules(rules) == rules
    assert resolve_workload(proc(env={"W": "w"}), rules) == "w"
    assert env_keys(rules) == ["W"]
    assert isinstance(rules[0], Rule)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [{"match": "slurm_job"}, {"match": "hostname"}],
            "rules[1]: key 'match' must be one of env, slurm_job, k8s_namespace, k8s_pod,"
            " container, user, cmdline, got 'hostname'",
        ),
        ([{"pattern": "x"}], "rules[0]: key 'match' must be one of"),
        (
            [{"match": "user", "pattern": "(unclosed"}],
            "rules[0]: key 'pattern' is not a valid regex '(unclosed'",
        ),
        (
            [{"match": "env"}],
            "rules[0]: key 'key' (the variable name) is required for match 'env'",
        ),
        (
            [{"match": "user", "patern": "^a$"}],
            "rules[0]: unknown key 'patern' (allowed: match, key, pattern, workload)",
        ),
        (
            [{"match": "user", "workload": 7}],
            "rules[0]: key 'workload' must be a non-empty string, got 7",
        ),
        (
            [{"match": "user", "key": "X"}],
            "rules[0]: key 'key' applies only to match 'env', not 'user'",
        ),
        (["env"], "rules[0]: must be a table"),
    ],
)
def test_bad_rules_name_index_and_key(rules, message):
    with pytest.raises(ValueError) as raised:
        validate_rules(rules)
    assert str(raised.value).startswith(message)


def test_resolve_workload_validates_raw_rules():
    with pytest.raises(ValueError, match=r"rules\[0\]"):
        resolve_workload(proc(), [{"match": "nope"}])


# --------------------------------------------------------------------------- configuration


def test_a_bad_rule_in_the_configuration_is_refused_at_start_with_exit_2(tmp_path, capsys):
    from cli.main import main
    from config.settings import ConfigError, load_config

    conf = tmp_path / "bad.toml"
    conf.write_text(
        "[workloads]\n"
        "rules = [\n"
        '  { match = "env", key = "TEAM" },\n'
        '  { match = "cmdline", pattern = "(unclosed" },\n'
        "]\n"
    )
    expected = f"{conf}: [workloads] rules[1]: key 'pattern' is not a valid regex '(unclosed'"
    with pytest.raises(ConfigError) as raised:
        load_config(conf)
    assert str(raised.value).startswith(expected)
    assert main(["--config", str(conf), "collect", "--source", "demo", "--once"]) == 2
    assert expected in capsys.readouterr().err

    conf.write_text('[workloads]\nrules = [{ match = "env" }]\n')
    with pytest.raises(ConfigError, match=r"rules\[0\]: key 'key' \(the variable name\)"):
        load_config(conf)


def test_the_shipped_configuration_comment_names_every_match_kind_and_the_defaults():
    """config/gpuledger.toml documents the rules; keep it in step with this module."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "config" / "gpuledger.toml").read_text()
    block = text[text.index("# Ordered rules") : text.index("\nrules = ")]
    assert "match = " + "|".join(MATCH_KINDS) in block.replace("\n# ", "")
    assert [r["match"] for r in DEFAULT_RULES] == [
        "env",
        "slurm_job",
        "k8s_namespace",
        "k8s_pod",
    ]
    assert "GPULEDGER_WORKLOAD, then the Slurm job" in block.replace("\n# ", " ")
    assert "then the Kubernetes namespace, then the pod" in block.replace("\n# ", " ")


# --------------------------------------------------------------------------- ProcessAttributor


def _batch(procs: list[dict], gpus: list[str]):
    import polars as pl

    from tables.records import Batch

    ts = datetime(2026, 11, 20, tzinfo=UTC)
    common = {"ts": ts, "host": "h", "source": "smi"}
    return Batch(
        pl.DataFrame([{**common, "gpu_uuid": g} for g in gpus]),
        pl.DataFrame([{**common, **p} for p in procs]),
    )


def test_attributor_reads_this_hosts_proc_and_falls_back_to_what_the_row_carries(tmp_path):
    from tests.collectors.gpu.fake_nvml import write_proc_entry

    write_proc_entry(tmp_path, 10, cmdline=["python", "a.py"], environ={"GPULEDGER_WORKLOAD": "a"})
    rules = [
        {"match": "env", "key": "GPULEDGER_WORKLOAD"},
        {"match": "cmdline", "pattern": "^vllm", "workload": "serving"},
    ]
    batch = _batch(
        [
            {"gpu_uuid": "G1", "pid": 10, "command": "python", "used_mib": 100.0},
            {"gpu_uuid": "G1", "pid": 11, "command": "vllm serve", "used_mib": 900.0},  # gone
            {"gpu_uuid": "G2", "pid": 12, "command": "bash", "used_mib": 5.0},  # gone
        ],
        ["G1", "G2", "G3"],
    )
    out = ProcessAttributor(rules, proc_root=tmp_path).apply(batch)
    assert out.process_samples.select("pid", "user", "command", "workload").rows() == [
        (10, "root", "python a.py", "a"),  # /proc knows more than nvidia-smi's short name
        (11, "unknown", "vllm serve", "serving"),
        (12, "unknown", "bash", "unattributed:unknown"),
    ]
    # No SM share from nvidia-smi: the most memory names the GPU; no process, no workload.
    assert out.gpu_samples.select("gpu_uuid", "workload").rows() == [
        ("G1", "serving"),
        ("G2", "unattributed:unknown"),
        ("G3", None),
    ]


def test_attributor_without_proc_uses_pod_labels_and_keeps_set_workloads():
    batch = _batch(
        [
            {"gpu_uuid": "G1", "pod": "eval-0", "namespace": "team-vision", "container": "c"},
            {"gpu_uuid": "G2", "pid": 7, "workload": "given"},
        ],
        ["G1", "G2"],
    )
    out = ProcessAttributor().apply(batch)
    assert out.process_samples.select("gpu_uuid", "pod", "user", "workload").rows() == [
        ("G1", "eval-0", "unknown", "team-vision"),
        ("G2", None, "unknown", "given"),
    ]
    assert out.gpu_samples["workload"].to_list() == ["team-vision", "given"]
    empty = _batch([], ["G1"])
    empty.process_samples = empty.process_samples.clear()
    assert ProcessAttributor().apply(empty) is empty


def test_dominant_workload_prefers_sm_share_then_memory_then_lowest_pid():
    rows = [
        {"pid": 1, "sm_pct": 10.0, "used_mib": 100.0, "workload": "a"},
        {"pid": 2, "sm_pct": 30.0, "used_mib": 10.0, "workload": "b"},
    ]
    assert dominant_workload(rows) == "b"
    no_sm = [{**r, "sm_pct": None} for r in rows]
    assert dominant_workload(no_sm) == "a"
    tie = [{**r, "sm_pct": None, "used_mib": 5.0} for r in rows]
    assert dominant_workload(tie) == "a"
    assert dominant_workload([]) is None
