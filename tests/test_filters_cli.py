"""``radflow filter``: options, one-line errors with exit code 2, output geometry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.cli import main
from radflow.filters.laws import LawsSettings, laws_image
from radflow.filters.log import LogSettings, log_image
from radflow.filters.wavelet import WaveletSettings, wavelet_image
from radflow.io.nifti import write_nifti


def run_cli(argv: Sequence[str]) -> int:
    """The ``radflow`` console command, in-process."""
    return main(list(argv))


@pytest.fixture
def volume(tmp_path: Path) -> tuple[Path, sitk.Image]:
    """A small oblique, anisotropic CT-like volume written as NIfTI."""
    arr = np.random.default_rng(0).integers(-1000, 1000, size=(9, 10, 11)).astype(np.int16)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.75, 0.75, 0.75))
    image.SetOrigin((-12.5, 30.25, 101.0))
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    path = tmp_path / "ct.nii.gz"
    write_nifti(path, image)
    return path, sitk.ReadImage(str(path))


@pytest.mark.parametrize(("options", "expected"), [
    (["--filter", "laws", "--kernel", "L5E5E5", "--rotation-invariant", "--pooling", "max",
      "--energy-delta", "2", "--boundary", "mirror"],
     lambda im: laws_image(im, LawsSettings("L5E5E5", True, "max", 2, "mirror"))),
    (["--filter", "laws", "--kernel", "L5S5", "--2d", "--boundary", "wrap"],
     lambda im: laws_image(im, LawsSettings("L5S5", boundary="wrap", dimensions="2d"))),
    (["--filter", "log", "--sigma-mm", "1.5", "--truncate", "3"],
     lambda im: log_image(im, LogSettings(1.5, 3.0))),
    (["--filter", "wavelet", "--wavelet", "db3", "--level", "1", "--band", "LLH",
      "--rotation-invariant"],
     lambda im: wavelet_image(im, WaveletSettings("db3", "LLH", 1, True))),
])
def test_output_matches_library_and_keeps_geometry(volume: tuple[Path, sitk.Image],
                                                   tmp_path: Path, options: list[str],
                                                   expected) -> None:  # type: ignore[no-untyped-def]
    source, image = volume
    out = tmp_path / "out" / "response.nii.gz"
    assert run_cli(["filter", str(source), str(out), *options]) == 0
    result = sitk.ReadImage(str(out))
    assert result.GetPixelID() == sitk.sitkFloat32
    assert result.GetSize() == image.GetSize()
    np.testing.assert_allclose(result.GetOrigin(), image.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(result.GetSpacing(), image.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(result.GetDirection(), image.GetDirection(), atol=1e-6)
    want = sitk.GetArrayFromImage(expected(image))
    np.testing.assert_allclose(sitk.GetArrayFromImage(result), want, rtol=1e-6,
                               atol=1e-6 * np.abs(want).max())
    assert not list(out.parent.glob(".tmp-*"))


def test_float64_output(volume: tuple[Path, sitk.Image], tmp_path: Path) -> None:
    source, image = volume
    out = tmp_path / "mean.nii.gz"
    assert run_cli(["filter", str(source), str(out), "--filter", "mean", "--support", "3",
                    "--dtype", "float64"]) == 0
    result = sitk.ReadImage(str(out))
    assert result.GetPixelID() == sitk.sitkFloat64
    arr = sitk.GetArrayFromImage(image).astype(float)
    centre = arr[3:6, 3:6, 3:6].mean()
    assert np.isclose(sitk.GetArrayFromImage(result)[4, 4, 4], centre, rtol=1e-12)


@pytest.mark.parametrize(("options", "message"), [
    (["--filter", "gabor"], "--filter: 'gabor' is not allowed; choose one of mean, log, laws, "
                            "wavelet"),
    (["--filter", "laws"], "--kernel is required with --filter laws"),
    (["--filter", "laws", "--kernel", "L5Q5E5"], "--kernel: 'L5Q5E5' is not allowed"),
    (["--filter", "laws", "--kernel", "L5E5"], "--kernel: 'L5E5' is not allowed with "
                                               "dimensions='3d'"),
    (["--filter", "laws", "--kernel", "L5E5E5", "--boundary", "reflect"],
     "--boundary: 'reflect' is not allowed; choose one of mirror, nearest, wrap, constant"),
    (["--filter", "laws", "--kernel", "L5E5E5", "--pooling", "min"],
     "--pooling: 'min' is not allowed; choose one of max, mean"),
    (["--filter", "laws", "--kernel", "L5E5E5", "--energy-delta", "x"],
     "--energy-delta: 'x' is not allowed; expected an integer ≥ 0"),
    (["--filter", "laws", "--kernel", "L5E5E5", "--support", "3"],
     "--support is not an option of --filter laws"),
    (["--filter", "mean", "--support", "4"],
     "--support: 4 is not allowed; expected an odd integer"),
    (["--filter", "mean", "--support", "3", "--rotation-invariant"],
     "--rotation-invariant is not an option of --filter mean"),
    (["--filter", "log"], "--sigma-mm is required with --filter log"),
    (["--filter", "log", "--sigma-mm", "0"], "--sigma-mm: 0.0 is not allowed; expected a finite "
                                             "number > 0"),
    (["--filter", "log", "--sigma-mm", "1", "--truncate", "many"], "--truncate: 'many' is not "
                                                                   "allowed"),
    (["--filter", "wavelet", "--wavelet", "db2"], "--band is required with --filter wavelet"),
    (["--filter", "wavelet", "--wavelet", "db2", "--band", "LLX"], "--band: 'LLX' is not allowed"),
    (["--filter", "wavelet", "--wavelet", "morlet", "--band", "LLH"], "--wavelet: 'morlet' is not "
                                                                       "allowed"),
    (["--filter", "wavelet", "--wavelet", "db2", "--band", "LLH", "--level", "0"],
     "--level: 0 is not allowed; expected an integer ≥ 1"),
    (["--filter", "mean", "--support", "3", "--dtype", "int16"],
     "--dtype: 'int16' is not allowed; choose one of float32, float64"),
])
def test_bad_options_give_one_line_and_exit_2(volume: tuple[Path, sitk.Image], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              options: list[str], message: str) -> None:
    source, _ = volume
    out = tmp_path / "out.nii.gz"
    assert run_cli(["filter", str(source), str(out), *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("radflow filter: error: ")
    assert message in err
    assert not out.exists()


def test_bad_output_name_and_missing_input(volume: tuple[Path, sitk.Image], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    source, _ = volume
    assert run_cli(["filter", str(source), str(tmp_path / "out.nii"), "--filter", "mean",
                    "--support", "3"]) == 2
    assert "must end with .nii.gz" in capsys.readouterr().err
    assert run_cli(["filter", str(tmp_path / "absent.nii.gz"), str(tmp_path / "o.nii.gz"),
                    "--filter", "mean", "--support", "3"]) == 2
    assert "no such image file" in capsys.readouterr().err
