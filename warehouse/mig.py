"""MIG boards in the minute rollups: a MIG-enabled board is one GPU (DESIGN.md §2, "MIG").

Collectors report a board in MIG mode as one row per instance (`parent_gpu_uuid` = the board)
and, where the source has one, a row for the board itself (nvidia-smi and dcgm-exporter: power,
temperature, no utilization; NVML has none). `split_boards` turns the per-GPU minute rows of
such a board into rows that add up to exactly one GPU:

- each instance gets the board's time in proportion to its compute slices: the profile's slices
  ("3g.40gb" = 3; a compute instance "1c.3g.40gb" = 1 of its GPU instance's 3) over the board's
  (`board_slices`); its seconds, busy and activity-known seconds are its own sampled seconds x
  that share, its energy and power the board's x its part of the board's seconds;
- the board's remainder, the slices no instance holds, becomes a row of the board's own UUID
  (`parent_gpu_uuid` = itself, `mig_profile` = `unpartitioned`) with no workload, so it goes to
  `__idle__`, and with unknown activity (nothing reports on slices no instance holds);
- the board's seconds are its own row's where it has one (nvidia-smi, dcgm), else the longest
  of its instances' in that minute (NVML): instances and board are sampled together, so the
  shares of a board always add up to its seconds and nothing is counted twice.

Every row gets `board_share`: the fraction of a physical GPU it stands for (1 for a GPU not in
MIG mode), so a reader can tell GPU-seconds (`seconds`) from clock seconds
(`seconds / board_share`).
"""

from __future__ import annotations

import polars as pl

UNPARTITIONED = "unpartitioned"
# Compute slices of a board in MIG mode by model; the A30 (and the RTX PRO 6000 Blackwell)
# have 4, the A100, H100, H200, H800, H20, B200, GB200 and GH200 have 7.
_FOUR_SLICE_BOARD = r"(?i)(^|[^a-z0-9])(A30|RTX PRO 6000)([^0-9]|$)"
DEFAULT_BOARD_SLICES = 7
# A board's remainder below this many seconds in a minute is rounding, not time.
_EPSILON_S = 1e-6
# A MIG instance's rows name their board by (host, parent_gpu_uuid, minute).
_ON_BOARD = ["host", "parent_gpu_uuid", "minute"]


def profile_slices(profile: pl.Expr) -> pl.Expr:
    """Compute slices of a MIG profile: "1g.10gb" -> 1, "3g.40gb" -> 3, "1g.10gb+me" -> 1;
    a compute instance "1c.3g.40gb" -> 1 (it shares its 3-slice GPU instance with others).
    Null for a missing or unreadable profile."""
    ci = profile.str.extract(r"^\s*(\d+)c\.\d+g\.", 1).cast(pl.Int64, strict=False)
    gi = profile.str.extract(r"^\s*(?:\d+c\.)?(\d+)g\.", 1).cast(pl.Int64, strict=False)
    return pl.coalesce(ci, gi)


def board_slices(model: pl.Expr) -> pl.Expr:
    """Compute slices of a MIG board from its model name: 4 on an A30 (and an RTX PRO 6000
    Blackwell), 7 on every other MIG-capable board (A100, H100, H200, B200, GH200, ...).
    A model this does not know, or none at all, is taken to have 7, the common case."""
    return (
        pl.when(model.fill_null("").str.contains(_FOUR_SLICE_BOARD))
        .then(pl.lit(4, pl.Int64))
        .otherwise(pl.lit(DEFAULT_BOARD_SLICES, pl.Int64))
    )


def board_members(gpus: pl.DataFrame) -> pl.DataFrame:
    """host, gpu_uuid, board: every MIG instance in `gpus` with its board, and each board
    itself (a board has no samples of its own from NVML)."""
    inst = (
        gpus.filter(pl.col("parent_gpu_uuid").is_not_null())
        .select("host", "gpu_uuid", board="parent_gpu_uuid")
        .unique()
    )
    boards = inst.select("host", gpu_uuid="board", board="board").unique()
    return pl.concat([inst, boards]).unique()


def widen_to_boards(spans: pl.DataFrame, gpus: pl.DataFrame) -> pl.DataFrame:
    """`spans` (host, gpu_uuid, lo, hi) where every GPU of a MIG board in `gpus` (its instances
    and the board itself) covers the whole board's span: a board's minutes are recomputed
    together, or its remainder would be computed from half its instances."""
    members = board_members(gpus)
    if members.height == 0:
        return spans
    boards = (
        spans.join(members, on=["host", "gpu_uuid"], how="inner")
        .group_by("host", "board")
        .agg(lo=pl.col("lo").min(), hi=pl.col("hi").max())
    )
    if boards.height == 0:
        return spans
    widened = members.join(boards, on=["host", "board"], how="inner").select(spans.columns)
    rest = spans.join(widened.select("host", "gpu_uuid"), on=["host", "gpu_uuid"], how="anti")
    return pl.concat([rest, widened.cast(spans.schema)])


def board_spans(spans: pl.DataFrame, gpus: pl.DataFrame) -> pl.DataFrame:
    """host, board, lo, hi: the span of each MIG board that has a GPU in `spans`."""
    members = board_members(gpus)
    return (
        spans.join(members, on=["host", "gpu_uuid"], how="inner")
        .group_by("host", "board")
        .agg(lo=pl.col("lo").min(), hi=pl.col("hi").max())
    )


def _per_instance(inst: pl.DataFrame) -> pl.DataFrame:
    """Per (instance, minute): its profile, model, clock seconds, energy, power and slices."""
    return (
        inst.group_by("host", "parent_gpu_uuid", "gpu_uuid", "minute")
        .agg(
            profile=pl.col("mig_profile").drop_nulls().first(),
            model=pl.col("gpu_model").drop_nulls().first(),
            clock_s=pl.col("seconds").sum(),
            inst_j=pl.col("energy_j").fill_null(0.0).sum(),
            inst_w=pl.col("power_avg_w").max(),
        )
        .with_columns(slices=profile_slices(pl.col("profile")).cast(pl.Float64))
    )


def _board_own_rows(board_rows: pl.DataFrame) -> pl.DataFrame:
    """Per (board, minute): what the board's own row says (seconds, energy, power, samples,
    model, source)."""
    return board_rows.group_by("host", "gpu_uuid", "minute").agg(
        row_s=pl.col("seconds").sum(),
        row_j=pl.col("energy_j").fill_null(0.0).sum(),
        row_w=pl.col("power_avg_w").mean(),
        row_samples=pl.col("samples").sum(),
        row_model=pl.col("gpu_model").drop_nulls().first(),
        row_source=pl.col("source").drop_nulls().first(),
    )


def _shares(inst: pl.DataFrame, board_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per (instance, minute): its share of the board; per (board, minute): the board's
    seconds, energy, power and what its own row (if any) says."""
    key = ["host", "parent_gpu_uuid", "minute"]
    per_inst = _per_instance(inst)
    own = _board_own_rows(board_rows)
    board = (
        per_inst.group_by(key)
        .agg(
            model=pl.col("model").drop_nulls().first(),
            known=pl.col("slices").sum(),
            unknown=pl.col("slices").is_null().sum(),
            inst_s=pl.col("clock_s").max(),
            inst_j=pl.col("inst_j").max(),
            inst_w=pl.col("inst_w").max(),
        )
        .join(
            own,
            left_on=key,
            right_on=["host", "gpu_uuid", "minute"],
            how="left",
        )
        .with_columns(
            n=board_slices(pl.coalesce("row_model", "model")).cast(pl.Float64),
            board_s=pl.coalesce("row_s", "inst_s"),
            board_j=pl.coalesce("row_j", "inst_j"),
            board_w=pl.coalesce("row_w", "inst_w"),
        )
        .with_columns(
            # Instances without a readable profile share the slices the others leave.
            fill=pl.when(pl.col("unknown") > 0)
            .then((pl.col("n") - pl.col("known")).clip(lower_bound=0.0) / pl.col("unknown"))
            .otherwise(0.0)
        )
        .with_columns(total=pl.col("known") + pl.col("fill") * pl.col("unknown"))
        # More slices reported than the board has (an unknown board model): scale down.
        .with_columns(per_slice=1.0 / pl.max_horizontal("n", "total"))
    )
    shares = per_inst.join(board.select(*key, "fill", "per_slice"), on=key).select(
        "host",
        "gpu_uuid",
        "minute",
        share=pl.coalesce("slices", "fill") * pl.col("per_slice"),
    )
    return shares, board


def split_boards(minutes: pl.DataFrame) -> pl.DataFrame:
    """Per-GPU minute rows with every MIG board turned into one GPU (see the module docstring),
    plus `board_share`. `minutes` has the gpu_minute columns (tables.stored.GPU_MINUTE
    without `board_share`); rows come back in the same columns, `board_share` last."""
    is_inst = pl.col("parent_gpu_uuid").is_not_null()
    columns = [c for c in minutes.columns if c != "board_share"]
    inst = minutes.filter(is_inst)
    if inst.height == 0:
        return minutes.select(columns).with_columns(board_share=pl.lit(1.0))
    boards = inst.select("host", gpu_uuid="parent_gpu_uuid", minute="minute").unique()
    others = minutes.filter(~is_inst)
    board_rows = others.join(boards, on=["host", "gpu_uuid", "minute"], how="semi")
    plain = others.join(boards, on=["host", "gpu_uuid", "minute"], how="anti")
    shares, board = _shares(inst, board_rows)
    parts = _instance_parts(inst, shares, board)
    remainder = _unpartitioned_remainder(inst, board, parts)
    out_cols = [*columns, "board_share"]
    return pl.concat(
        [
            plain.select(columns).with_columns(board_share=pl.lit(1.0)),
            parts.select(out_cols),
            remainder.select(out_cols),
        ],
        how="vertical_relaxed",
    )


def _instance_parts(inst: pl.DataFrame, shares: pl.DataFrame, board: pl.DataFrame) -> pl.DataFrame:
    """The instances' rows with their GPU-seconds, power and energy as their share of the
    board's."""
    return (
        inst.join(shares, on=["host", "gpu_uuid", "minute"], how="left")
        .join(board.select(*_ON_BOARD, "board_s", "board_j", "board_w"), on=_ON_BOARD, how="left")
        .with_columns(
            seconds=pl.col("seconds") * pl.col("share"),
            busy_seconds=pl.col("busy_seconds") * pl.col("share"),
            activity_seconds=pl.col("activity_seconds") * pl.col("share"),
            power_avg_w=pl.col("board_w") * pl.col("share"),
            board_share=pl.col("share"),
        )
        .with_columns(
            energy_j=pl.when(pl.col("board_s") > 0)
            .then(pl.col("board_j").fill_null(0.0) * pl.col("seconds") / pl.col("board_s"))
            .otherwise(0.0)
        )
    )


def _unpartitioned_remainder(
    inst: pl.DataFrame, board: pl.DataFrame, parts: pl.DataFrame
) -> pl.DataFrame:
    """Per (board, minute): the seconds and energy no instance holds, as one row of the board
    (no workload, no activity), its source the board row's, else its instances'."""
    used = parts.group_by(_ON_BOARD).agg(
        used_s=pl.col("seconds").sum(), used_j=pl.col("energy_j").sum()
    )
    remainder = (
        board.join(used, on=_ON_BOARD, how="left")
        .with_columns(
            seconds=(pl.col("board_s") - pl.col("used_s")).clip(lower_bound=0.0),
            energy_j=(pl.col("board_j").fill_null(0.0) - pl.col("used_j")).clip(lower_bound=0.0),
        )
        .filter(pl.col("seconds") > _EPSILON_S)
        .select(
            "minute",
            "host",
            gpu_uuid="parent_gpu_uuid",
            gpu_model=pl.coalesce("row_model", "model"),
            workload=pl.lit(None, pl.String),
            samples=pl.col("row_samples").fill_null(0).cast(pl.Int32),
            seconds="seconds",
            busy_seconds=pl.lit(0.0),
            activity_seconds=pl.lit(0.0),
            util_avg=pl.lit(None, pl.Float64),
            sm_active_avg=pl.lit(None, pl.Float64),
            activity_kind=pl.lit(None, pl.String),
            mem_used_max_mib=pl.lit(None, pl.Float64),
            mem_total_mib=pl.lit(None, pl.Float64),
            power_avg_w=pl.col("board_w") * pl.col("seconds") / pl.col("board_s"),
            energy_j="energy_j",
            source=pl.col("row_source"),
            parent_gpu_uuid="parent_gpu_uuid",
            mig_profile=pl.lit(UNPARTITIONED),
            board_share=pl.col("seconds") / pl.col("board_s"),
        )
    )
    # A board row's source where it had none of its own: its instances'.
    sources = inst.group_by(_ON_BOARD).agg(inst_source=pl.col("source").drop_nulls().first())
    return (
        remainder.join(
            sources,
            left_on=["host", "gpu_uuid", "minute"],
            right_on=_ON_BOARD,
            how="left",
        )
        .with_columns(source=pl.coalesce("source", "inst_source"))
        .drop("inst_source")
    )
