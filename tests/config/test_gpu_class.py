"""config/gpu_class.py: every reported GPU model name resolves through one resolver to a catalog
class (DESIGN.md §2 "GPU class"), with the names read from the real captures in
tests/fixtures/realdata (expected classes are written here by hand, never computed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from collectors.gpu import prometheus, smi
from config.catalog import load_catalog
from config.gpu_class import GpuClasses, catalog_line, normalize, unpriced_advice
from config.settings import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "realdata"
CAPTURES = REAL / "nvidia-smi-captures-utkuozdemir" / "captures"
XML = REAL / "nvidia-smi-xml-datakit"
DCGM = REAL / "dcgm-exporter-cncf-ai-conformance"
VANTAGE = REAL / "aws-ec2-gpu-hw-readings-vantage" / "manually_fetched_data_gpu_subset.json"
CATALOG = load_catalog(ROOT / "config" / "catalog.csv")
CLASSES = GpuClasses(CATALOG)

# Names NVML / nvidia-smi / DCGM report, and the class each is (issue 11's list).
REAL_NAMES = {
    "NVIDIA H100 80GB HBM3": "H100",
    "NVIDIA H200": "H200",
    "NVIDIA B200": "B200",
    "NVIDIA A100-SXM4-40GB": "A100-40GB",
    "NVIDIA A100-SXM4-80GB": "A100-80GB",
    "NVIDIA A10G": "A10G",
    "NVIDIA L4": "L4",
    "NVIDIA L40S": "L40S",
    "Tesla T4": "T4",
    "NVIDIA T4G": "T4",
    "GRID A100-40C": "A100-40GB",  # a 40 GB vGPU compute profile of an A100
    "Tesla V100-PCIE-32GB": "V100-32GB",
    "Tesla V100S-PCIE-32GB": "V100-32GB",
    "Tesla V100-SXM2-16GB": "V100-16GB",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition": "RTX PRO 6000 Blackwell",
    "NVIDIA GeForce RTX 2080 SUPER": "RTX 2080 SUPER",
    "NVIDIA GeForce RTX 4080 SUPER": "RTX 4080 SUPER",
    "NVIDIA GeForce RTX 4090": "RTX 4090",
    "NVIDIA GeForce GTX 1050": "GTX 1050",
    "NVIDIA RTX 6000 Ada Generation": "RTX 6000 Ada",
    "NVIDIA RTX A6000": "RTX A6000",
    "NVIDIA H100 PCIe": "H100",
    "NVIDIA H100 NVL": "H100",
    "NVIDIA GH200 480GB": "GH200",
    "NVIDIA H100 80GB HBM3 MIG 1g.10gb": "H100",
    "NVIDIA A100-SXM4-40GB MIG 3g.20gb": "A100-40GB",
    "Graphics Device": None,  # what nvidia-smi calls a board it does not know: stays unpriced
    "NVIDIA RTX A1000": None,  # "A100" inside another card's number is not the A100
}


@pytest.mark.parametrize(("name", "klass"), REAL_NAMES.items(), ids=list(REAL_NAMES))
def test_every_reported_name_resolves_to_its_class(name, klass):
    assert CLASSES.resolve(name) == klass


def test_normalize_drops_brand_form_factor_memory_and_mig():
    assert normalize("NVIDIA A100-SXM4-40GB MIG 1g.5gb") == normalize("A100-40GB").__class__(
        "A100", 40.0, True
    )
    assert normalize("Tesla V100S-PCIE-32GB").core == "V100S"
    assert (normalize("GRID A100-40C").core, normalize("GRID A100-40C").memory_gib) == (
        "A100",
        40.0,
    )
    assert normalize("NVIDIA H100 80GB HBM3").core == normalize("H100 NVL").core == "H100"


def _names(batch) -> set[tuple[str, float | None]]:
    return set(batch.gpu_samples.select("gpu_model", "mem_total_mib").iter_rows())


PARSED = {
    "linux-x86_64__nvidia-geforce-rtx-2080-super__595.71.05.txt": "RTX 2080 SUPER",
    "windows-x86_64__nvidia-geforce-rtx-2080-super__610.62.txt": "RTX 2080 SUPER",
    "linux-x86_64__nvidia-geforce-rtx-4080-super__595.71.05.txt": "RTX 4080 SUPER",
    "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt": "H100",
    "linux-x86_64__nvidia-h100-mig__590.48.01.txt": "H100",  # the board and its 8 MIG rows
    "linux-x86_64__nvidia-l40s__595.80.txt": "L40S",
}


@pytest.mark.parametrize(("name", "klass"), PARSED.items(), ids=list(PARSED))
def test_the_models_the_smi_parser_reads_from_real_captures_resolve(name, klass):
    """Each (reported name, memory) pair the capture yields, MIG instance rows with their own
    small memory included, is the capture's board class."""
    pairs = _names(smi.parse_capture_file(CAPTURES / name))
    assert pairs and {CLASSES.resolve(m, mem) for m, mem in pairs} == {klass}


@pytest.mark.parametrize(
    ("name", "model", "klass"),
    [
        ("gtx-1050-1.xml", "NVIDIA GeForce GTX 1050", "GTX 1050"),
        ("gtx-1card.xml", "Tesla V100-PCIE-32GB", "V100-32GB"),
        ("gtx-1660-ti.xml", "Graphics Device", None),
    ],
)
def test_the_xml_captures_resolve(name, model, klass):
    pairs = _names(smi.parse_capture_file(XML / name))
    assert {m for m, _ in pairs} == {model}
    assert {CLASSES.resolve(m, mem) for m, mem in pairs} == {klass}


@pytest.mark.parametrize(
    ("name", "klass"),
    [
        ("ericsson-ccd.prom", "T4"),
        ("rafay.prom", "T4"),
        ("kops.prom", "L4"),
        ("upcloud.prom", "L40S"),
        ("viettel-ai-platform.prom", "L40S"),
        ("vks.prom", "A100-40GB"),  # GRID A100-40C
    ],
)
def test_dcgm_model_names_resolve(name, klass):
    pairs = _names(prometheus.parse_exposition((DCGM / name).read_text(), host="h"))
    assert pairs and {CLASSES.resolve(m, mem) for m, mem in pairs} == {klass}


def test_mig_device_names_of_the_real_capture_are_their_board():
    """`nvidia-smi -L` of the MIG capture lists the board and its MIG devices; NVML names a MIG
    device "<board> MIG <profile>". Built from the raw text, each resolves to the H100."""
    text = (CAPTURES / "linux-x86_64__nvidia-h100-mig__590.48.01.txt").read_text()
    board = re.search(r"^GPU 0: (.+?) \(UUID", text, re.M).group(1)
    profiles = re.findall(r"^\s+MIG (\S+)\s+Device\s+\d+:", text, re.M)
    assert board == "NVIDIA H100 80GB HBM3"
    assert sorted(set(profiles)) == ["1g.10gb", "2g.20gb", "3g.40gb"]
    for profile in profiles:
        assert CLASSES.resolve(f"{board} MIG {profile}", 10 * 1024) == "H100"


def test_every_catalog_instance_resolves_from_the_name_nvml_reports_on_it():
    """Vantage ran 50 real EC2 GPU instance types and recorded the name NVML reported on each:
    every one resolves to a class, and every catalog instance type among them to its catalog
    class (the `memory` field there is not the GPU's memory, so it is not used)."""
    readings = json.loads(VANTAGE.read_text())
    reported = {t: v["nvidia_gpus"][0]["name"] for t, v in readings.items()}
    assert len(reported) == 50
    assert {t: CLASSES.resolve(n) for t, n in reported.items() if CLASSES.resolve(n) is None} == {}
    instances = dict(
        CATALOG.filter(pl.col("kind") == "instance").select("name", "gpu_model").iter_rows()
    )
    both = sorted(set(instances) & set(reported))
    assert len(both) == 15  # p3*, p5.4xlarge and p5en.48xlarge were not measured
    assert {t: CLASSES.resolve(reported[t]) for t in both} == {t: instances[t] for t in both}


def test_the_reported_memory_splits_one_chip():
    assert CLASSES.resolve("V100", 32 * 1024) == "V100-32GB"
    assert CLASSES.resolve("V100", 16 * 1024) == "V100-16GB"
    assert CLASSES.resolve("Tesla V100-PCIE", 32510) == "V100-32GB"  # 31.7 GiB reported
    assert CLASSES.resolve("NVIDIA A100 PCIe", 81920) == "A100-80GB"
    assert CLASSES.resolve("V100") is None  # ambiguous without memory
    # a MIG instance's own memory is no evidence of the board's
    assert CLASSES.resolve("NVIDIA A100 MIG 1g.10gb", 9984) is None
    assert CLASSES.candidates("NVIDIA A100") == ["A100-40GB", "A100-80GB"]


def test_the_vectorised_form_resolves_each_pair_once_and_keeps_every_row():
    frame = pl.DataFrame(
        {
            "gpu_model": ["Tesla V100-PCIE", "Tesla V100-PCIE", "Graphics Device", None],
            "mem_total_mib": [32510.0, 16160.0, 5912.0, None],
        }
    )
    out = CLASSES.resolve_frame(frame)
    assert out["gpu_class"].to_list() == ["V100-32GB", "V100-16GB", None, None]
    assert out.height == frame.height


def test_high_end_comes_from_the_catalog_column():
    assert CLASSES.high_end == {"B200", "H200", "GH200", "H100", "A100-80GB", "A100-40GB"}


def test_a_team_adds_a_class_by_adding_the_suggested_catalog_row(tmp_path):
    """The line a warning suggests for an unknown model, its placeholders filled in, is a valid
    catalog row: the model then resolves to it and has a purchase price."""
    line = catalog_line("Graphics Device", 5912 / 1024)
    assert line.startswith("gpu,GRAPHICS DEVICE,,,GRAPHICS DEVICE,1,5.77344,<relative_throughput>")
    assert line.endswith(",Graphics Device")
    filled = (
        line.replace("<relative_throughput>", "0.1")
        .replace("<purchase_usd_per_gpu>", "279")
        .replace("<source>", "our invoice")
        .replace("<as_of YYYY-MM-DD>", "2026-11-01")
        .replace("<notes>", "GTX 1660 Ti as nvidia-smi names it")
    )
    path = tmp_path / "catalog.csv"
    path.write_text((ROOT / "config" / "catalog.csv").read_text() + filled + "\n")
    classes = GpuClasses(load_catalog(path))
    assert classes.resolve("Graphics Device") == "GRAPHICS DEVICE"
    assert classes.info("GRAPHICS DEVICE")["purchase_usd_per_gpu"] == 279.0


def test_the_unpriced_advice_names_the_catalog_row():
    unknown = unpriced_advice("Graphics Device", None)
    assert "config/catalog.csv" in unknown and "gpu,GRAPHICS DEVICE," in unknown
    assert "<purchase_usd_per_gpu>" in unknown
    known = unpriced_advice("NVIDIA GH200 480GB", "GH200")
    assert "class 'GH200'" in known and "purchase_usd_per_gpu" in known


def test_a_configuration_that_still_sets_high_end_classes_is_told_where_they_went(tmp_path):
    f = tmp_path / "old.toml"
    f.write_text('[thresholds]\nhigh_end_classes = ["H100", "A100"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert "[thresholds] high_end_classes" in str(err.value)
    assert "catalog's high_end column" in str(err.value)
