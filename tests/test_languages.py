"""aggregator.languages: telling English from Spanish text, or declining to."""

from __future__ import annotations

from aggregator.languages import detect_language


def test_spanish_and_english_headlines_with_a_summary() -> None:
    assert (
        detect_language(
            "Trabajadoras del hogar logran contrato modelo. El contrato fija horario, descanso "
            "semanal y vacaciones pagadas para las familias."
        )
        == "es"
    )
    assert (
        detect_language(
            "Dairy workers win a heat-safety protocol. The protocol requires shade and water at "
            "all of the farms in the program."
        )
        == "en"
    )


def test_too_little_or_mixed_text_gives_no_answer() -> None:
    assert detect_language("Night-shift cleaners win paid breaks") is None
    assert detect_language("") is None
    assert detect_language("the workers and the trabajadores de la union") is None
