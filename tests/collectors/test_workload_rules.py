"""Workload rules: validation messages and first-match resolution."""

from __future__ import annotations

import pytest

from collectors.procinfo import ProcessInfo
from collectors.workload_rules import (
    DEFAULT_RULES,
    Rule,
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
            "workload rule 1: key 'match' must be one of env, slurm_job, k8s_namespace, k8s_pod,"
            " container, user, cmdline, got 'hostname'",
        ),
        ([{"pattern": "x"}], "workload rule 0: key 'match' must be one of"),
        (
            [{"match": "user", "pattern": "(unclosed"}],
            "workload rule 0: key 'pattern' is not a valid regex '(unclosed'",
        ),
        (
            [{"match": "env"}],
            "workload rule 0: key 'key' (the variable name) is required for match 'env'",
        ),
        (
            [{"match": "user", "patern": "^a$"}],
            "workload rule 0: unknown key 'patern' (allowed: match, key, pattern, workload)",
        ),
        (
            [{"match": "user", "workload": 7}],
            "workload rule 0: key 'workload' must be a non-empty string, got 7",
        ),
        (
            [{"match": "user", "key": "X"}],
            "workload rule 0: key 'key' applies only to match 'env', not 'user'",
        ),
        (["env"], "workload rule 0: must be a table"),
    ],
)
def test_bad_rules_name_index_and_key(rules, message):
    with pytest.raises(ValueError) as raised:
        validate_rules(rules)
    assert str(raised.value).startswith(message)


def test_resolve_workload_validates_raw_rules():
    with pytest.raises(ValueError, match="workload rule 0"):
        resolve_workload(proc(), [{"match": "nope"}])
