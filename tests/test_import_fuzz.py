"""Byte-mutated .tflite files (the five MLPerf Tiny models) and a mutated quantized .onnx file import or fail with
one IntonlyError, never anything else (bench/import_fuzz.py runs the long campaign)."""

from bench.import_fuzz import campaign, tflite_seeds


def test_mutated_tflite_files_give_only_typed_errors(tmp_path):
    result = campaign(tflite_seeds(), 400, seed=1, folder=tmp_path)
    assert result["findings"] == []
    assert result["outcomes"].get("ModelFileError", 0) > 50 and result["outcomes"].get("ok", 0) > 50


def test_mutated_onnx_files_give_only_typed_errors(tmp_path):
    from test_onnx_import import build_models

    (tmp_path / "models").mkdir()
    paths = build_models(tmp_path / "models")
    result = campaign({"cnn.onnx": paths["qdq-int8"].read_bytes()}, 150, seed=2, folder=tmp_path)
    assert result["findings"] == []
    assert result["outcomes"].get("ModelFileError", 0) > 50
