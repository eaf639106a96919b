"""The enforced power limit and the GPU error counters (uncorrected ECC errors, the last XID) read
from real captures, where each source has them: nvidia-smi XML (`power_readings`,
`ecc_errors/volatile`), the `--query-gpu` CSV (`enforced.power.limit`,
`ecc.errors.uncorrected.volatile.total`), nvidia_gpu_exporter's page and dcgm-exporter's
(`DCGM_FI_DEV_POWER_MGMT_LIMIT`, `DCGM_FI_DEV_ECC_DBE_VOL_TOTAL`, `DCGM_FI_DEV_XID_ERRORS`).
Where a capture does not carry a figure it is null, never 0. The expected values are read off
the files by eye (cited in the comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.gpu import prometheus, smi

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realdata"
XML = REAL / "nvidia-smi-xml-datakit"
UTKU = REAL / "nvidia-smi-captures-utkuozdemir"
DCGM = REAL / "dcgm-exporter-cncf-ai-conformance"
H100 = "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01"
RTX2080 = "linux-x86_64__nvidia-geforce-rtx-2080-super__595.71.05"


def figures(batch) -> list[tuple]:
    return batch.gpu_samples.select("gpu_model", "power_limit_w", "ecc_errors", "xid_error").rows()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # <enforced_power_limit>250.00 W</enforced_power_limit>; <double_bit><total>0</total>
        ("gtx-1card.xml", [("Tesla V100-PCIE-32GB", 250.0, 0.0, None)]),
        # 130.00 W; its <ecc_errors> are N/A (a GeForce-class card without ECC)
        ("gtx-1660-ti.xml", [("Graphics Device", 130.0, None, None)]),
        # <enforced_power_limit>N/A</enforced_power_limit>: unknown, not 0
        ("gtx-1050-1.xml", [("NVIDIA GeForce GTX 1050", None, None, None)]),
    ],
)
def test_smi_xml(name, expected):
    assert figures(smi.parse_smi_xml((XML / name).read_text(), "h")) == expected


def test_query_gpu_csv_of_an_h100_and_a_card_without_ecc():
    # enforced.power.limit [W] 700.00 W; ecc.errors.uncorrected.volatile.total 0
    h100 = (UTKU / "query-gpu-csv" / f"{H100}__load__query-gpu.csv").read_text()
    assert figures(smi.parse_query_gpu_csv(h100, "h")) == [
        ("NVIDIA H100 80GB HBM3", 700.0, 0.0, None)
    ]
    # 250.00 W; ECC [N/A]
    rtx = (UTKU / "query-gpu-csv" / f"{RTX2080}__load__query-gpu.csv").read_text()
    assert figures(smi.parse_query_gpu_csv(rtx, "h")) == [
        ("NVIDIA GeForce RTX 2080 SUPER", 250.0, None, None)
    ]


def test_a_mig_capture_keeps_the_limit_on_the_board_row_only():
    batch = smi.parse_capture_file(
        UTKU / "captures" / "linux-x86_64__nvidia-h100-mig__590.48.01.txt"
    )
    rows = batch.gpu_samples
    boards = rows.filter(rows["parent_gpu_uuid"].is_null())
    migs = rows.filter(rows["parent_gpu_uuid"].is_not_null())
    assert set(boards["power_limit_w"]) == {700.0} and set(boards["ecc_errors"]) == {0.0}
    assert migs.height and migs["power_limit_w"].is_null().all()


def test_nvidia_gpu_exporter_page():
    # nvidia_smi_enforced_power_limit_watts 700; nvidia_smi_ecc_errors_uncorrected_volatile_total 0
    page = UTKU / "exporter-metrics" / f"{H100}__load.metrics"
    assert figures(prometheus.parse_capture_file(page, "h")) == [
        ("NVIDIA H100 80GB HBM3", 700.0, 0.0, None)
    ]


def test_dcgm_exporter_pages_without_these_fields_leave_them_unknown():
    for page in sorted(DCGM.glob("*.prom")):
        rows = figures(prometheus.parse_capture_file(page, "h"))
        assert rows and all(r[1:] == (None, None, None) for r in rows), page.name


def test_dcgm_fields_when_the_exporter_is_configured_to_send_them():
    # kops.prom's L4 with the three fields dcgm-exporter sends when its CSV lists them
    # (DCGM_FI_DEV_POWER_MGMT_LIMIT in W, the volatile double-bit ECC total, the last XID)
    page = (DCGM / "kops.prom").read_text()
    labels = next(
        line[line.index("{") : line.index("}") + 1]
        for line in page.splitlines()
        if line.startswith("DCGM_FI_DEV_POWER_USAGE{")
    )
    extra = "\n".join(
        f"{name}{labels} {value}"
        for name, value in (
            ("DCGM_FI_DEV_POWER_MGMT_LIMIT", 72),
            ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 2),
            ("DCGM_FI_DEV_XID_ERRORS", 79),
        )
    )
    rows = figures(prometheus.parse_exposition(page + "\n" + extra + "\n", "h"))
    assert rows == [("NVIDIA L4", 72.0, 2.0, 79.0)]
