from mlcost.compress.hardware import detect_isa


def test_epyc_avx2_only_has_no_bf16_units() -> None:
    isa = detect_isa(frozenset({"avx2", "fma"}), model="AMD EPYC")
    assert not isa.bf16 and not isa.vnni and not isa.amx
    assert "no bf16 units" in (isa.unit_for("bf16") or "")
    assert "no VNNI" in isa.int8_note()


def test_xeon_with_amx_runs_bf16_and_int8_on_units() -> None:
    isa = detect_isa(
        frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"})
    )
    assert isa.bf16 and isa.vnni and isa.amx
    assert isa.unit_for("bf16") is None
    assert isa.unit_for("fp16") is not None  # no AVX512_FP16 / AMX-FP16 listed
    assert "AMX" in isa.summary()
