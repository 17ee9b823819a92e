import json
import subprocess
import sys

import pytest

from edgeproof import cli

SUBCOMMANDS = ["train", "convert", "verify", "repair", "deploy", "keygen", "pipeline", "run", "bench", "serve",
               "doctor", "selftest", "verify-bundle"]


def edgeproof_cmd(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeproof", *args], capture_output=True, text=True, timeout=timeout)


def test_every_subcommand_is_wired():
    parser = cli.build_parser()
    choices = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert sorted(choices) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_describes_the_subcommand(command):
    result = edgeproof_cmd(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: edgeproof {command}")
    description = cli.build_parser()._subparsers._group_actions[0].choices[command].description
    assert description and description.split()[0] in result.stdout
    assert "--" in result.stdout  # it documents options, not just a usage line


def test_top_level_help_lists_every_subcommand():
    result = edgeproof_cmd("--help")
    assert result.returncode == 0
    for command in SUBCOMMANDS:
        assert command in result.stdout


def test_serve_without_a_site_says_how_to_build_one(tmp_path):
    result = edgeproof_cmd("serve", "--site", str(tmp_path / "nothing"))
    assert result.returncode == 2 and result.stdout == ""
    assert "edgeproof deploy --target web" in result.stderr and "Traceback" not in result.stderr


def test_unknown_model_is_an_error_listing_known_models(tmp_path):
    result = edgeproof_cmd("train", "--model", "nope", "--framework", "torch", "--artifacts", str(tmp_path))
    assert result.returncode == 2
    assert "unknown model 'nope'" in result.stderr
    for name in ("linreg", "mnist_cnn", "imdb_lstm", "mnist_gan", "translator"):
        assert name in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.stack
def test_pipeline_runs_every_stage_and_ends_with_the_demo_site(tmp_path):
    result = edgeproof_cmd("pipeline", "--profile", "fast", "--model", "linreg", "--framework", "torch",
                           "--artifacts", str(tmp_path), timeout=900)
    assert result.returncode == 0, result.stderr
    assert "pipeline finished" in result.stdout
    for stage in cli.PIPELINE_STAGES:
        assert f"== edgeproof pipeline: {stage} ==" in result.stdout
    assert (tmp_path / "linreg" / "torch" / "checkpoint" / "checkpoint.json").exists()
    assert "| linreg | torch | fast | mse |" in (tmp_path / "training_summary.md").read_text()
    assert "conversion: 7 of 7 artifacts exist" in result.stdout
    summary = json.loads((tmp_path / "conversion_summary.json").read_text())
    assert summary["expected"] == summary["produced"] == 7
    assert "verification: " in result.stdout and (tmp_path / "parity_report.html").exists()
    verdicts = json.loads((tmp_path / "linreg" / "torch" / "parity.json").read_text())["artifacts"]
    passing = {v["mode"] for v in verdicts if v["status"] == "pass" and v["target"] == "tfjs"}
    web = json.loads((tmp_path / "deploy" / "web" / "index.json").read_text())
    assert {b["mode"] for b in web["bundles"] if b["artifact_target"] == "tfjs"} == passing and passing
    in_litertjs = {v["mode"] for v in verdicts if v["status"] == "pass" and v.get("browser") == "litertjs-wasm"}
    assert {b["mode"] for b in web["bundles"] if b["artifact_target"] == "tflite"} == in_litertjs
    assert (tmp_path / "deploy" / "pi" / "index.json").exists() and (tmp_path / "deploy" / "android" / "index.json").exists()
    assert (tmp_path / "deploy" / "web" / "index.html").exists()
    assert f"edgeproof serve --site {tmp_path}/deploy/web" in result.stdout
    timing = json.loads((tmp_path / "pipeline_timing.json").read_text())
    assert list(timing["stages"]) == list(cli.PIPELINE_STAGES) and timing["profile"] == "fast"
    assert 0 < round(sum(timing["stages"].values()), 1) <= timing["total_seconds"]  # both to 0.1 s: no float excess
    # Quiet by default (issue 16): no TensorFlow/CUDA/absl start-up noise, a short console, the full log on disk.
    console = result.stdout + result.stderr
    for noise in ("cuFFT", "cuDNN", "absl::InitializeLog", "computation_placer", "[torch.onnx]", "torchvision"):
        assert noise not in console, noise
    assert len(result.stdout.splitlines()) < 40  # 5 stage headers + 5 timings + a line per result: ~17 here
    (log,) = (tmp_path / "logs").glob("*-pipeline.log")
    assert len(log.read_text().splitlines()) > len(result.stdout.splitlines())  # the details are kept there


@pytest.mark.stack
def test_pipeline_skips_models_without_data_and_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    import urllib.request

    from edgeproof import pipeline
    from edgeproof.train import _data_files

    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setattr(_data_files, "data_dirs", lambda data_dir=None: [empty])  # no local copy anywhere
    monkeypatch.setattr(_data_files, "cache_dir", lambda: tmp_path / "cache")

    def offline(url, timeout=None):
        raise OSError(f"network unreachable: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    options = pipeline.PipelineOptions(models=["imdb_lstm", "linreg"], frameworks=["torch"], profile="fast",
                                       device="cpu", data_dir=None, artifacts=str(tmp_path))
    summary = pipeline.train_stage(options)
    assert [r["model"] for r in summary["trained"]] == ["linreg"]
    assert set(summary["skipped"]) == {"imdb_lstm"}
    out = capsys.readouterr().out
    assert "skipped imdb_lstm:" in out and "imdb.npz" in out and "EDGEPROOF_DATA_DIR" in out
