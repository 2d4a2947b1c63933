"""What a pack holds (`domain.pack_contents`): units read from BDPM presentation labels as the
official files write them, and contraceptives read from their substances."""

from __future__ import annotations

import pytest

from domain.pack_contents import is_contraceptive, units_in_pack


@pytest.mark.parametrize(
    ("label", "units"),
    [
        ("plaquette(s) PVC aluminium de 30 comprimé(s)", 30),  # Levothyrox 25 µg B/30
        ("plaquette(s) PVC aluminium de 90 comprimé(s)", 90),  # Levothyrox 25 µg B/90
        ("plaquette(s) thermoformée(s) PVC aluminium de 30  gélule(s)", 30),
        ("plaquettes OPA : polyamide orienté aluminium PVC-Aluminium de 30 comprimés", 30),
        ("3 plaquette(s) PVC aluminium de 21 comprimé(s)", 63),  # Minidril, 3 months
        ("3 pilulier(s) polypropylène de 30 comprimé(s)", 90),
        ("1 flacon(s) polyéthylène haute densité (PEHD) de 28 gélule(s)", 28),
        (
            "28 plaquette(s) thermoformée(s) aluminium de 1 comprimé(s) "
            "(distributeur parallèle :  MEDIWIN Limited)",
            28,
        ),
        ("20 sachet(s) papier polyéthylène aluminium de 4 g", 20),
        ("30 sachets papier aluminium polyéthylène de 8 g", 30),
        ("10 ampoule(s) en verre de 1 ml", 10),
        (
            "20 récipient(s) unidose(s) polyéthylène de 2 ml suremballée(s)/surpochée(s) par "
            "plaquette de 5 récipients unidoses",
            20,
        ),
        (
            "1 flacon(s) pressurisé(s) aluminium avec valve(s) doseuse(s) avec embout(s) "
            "buccal(aux) de 200 dose(s)",
            200,
        ),
        ("plaquette(s) aluminium polyéthylène de 6 suppositoire(s)", 6),
        ("8 sachet(s) papier polyéthylène aluminium de 1 dispositif(s) transdermique(s)", 8),
        ("plaquette(s) PVC-Aluminium de 1 comprimé(s)", 1),
        # A pill's active and placebo tablets; an initiation pack's strengths; a triphasic pill.
        (
            "1 plaquette(s) PVC aluminium de 24 comprimé(s) - "
            "1 plaquette(s) PVC aluminium de 4 comprimé(s)",
            28,
        ),
        (
            "plaquette(s) thermoformée(s) PVC-Aluminium de 4 comprimé(s) de 10 mg -  4 comprimé(s) "
            "de 20 mg - 19 comprimé(s) de 30 mg (étui d'initiation)",
            27,
        ),
        (
            "3 plaquette(s) PVC-Aluminium de 6  comprimé(s) beiges - 5 comprimé(s) marrons - 10  "
            "comprimé(s) blancs",
            63,
        ),
    ],
)
def test_a_label_that_counts_its_units_gives_them(label: str, units: int) -> None:
    assert units_in_pack(label) == units


@pytest.mark.parametrize(
    "label",
    [
        "1 flacon(s) en verre brun de 100 ml avec seringue(s) pour administration orale",
        "1 tube(s) aluminium de 30 g",
        "1 flacon(s) en verre",
        "5 flacon(s) en verre de 500 mg",
        "1 flacon(s) de poudre en verre - 1 seringue(s) préremplie(s) de solvant en verre",
        "30 flacon(s) en verre - 30 seringue(s) préremplie(s) en verre",
        "1 flacon(s) en verre de 1 dose(s) - 1 seringue(s) préremplie(s) en verre de 0,5 ml",
        "plaquette(s) PVC-Aluminium de 12 comprimé(s) - 72 sachet(s) papier aluminium",
        "plaquette(s) PVC aluminium de 0 comprimé(s)",
        "",
    ],
)
def test_a_label_in_volume_weight_or_a_kit_states_no_units(label: str) -> None:
    assert units_in_pack(label) is None


@pytest.mark.parametrize(
    "substances",
    [
        ("LÉVONORGESTREL", "ÉTHINYLESTRADIOL"),  # Minidril, Leeloo
        ("DROSPIRÉNONE", "ÉTHINYLESTRADIOL BÉTADEX-CLATHRATE"),  # Yaz
        ("DROSPIRÉNONE", "ESTÉTROL MONOHYDRATÉ"),  # Drovelis
        ("ACÉTATE DE NOMÉGESTROL", "ESTRADIOL HÉMIHYDRATÉ"),  # Zoely
        ("DIÉNOGEST", "VALÉRATE D'ESTRADIOL"),  # Qlaira
        ("DÉSOGESTREL",),  # Cerazette
        ("ÉTONOGESTREL",),  # Nexplanon
        ("LÉVONORGESTREL",),  # Norlevo, Mirena
        ("DROSPIRÉNONE",),  # Slinda
    ],
)
def test_a_pill_an_implant_or_an_intrauterine_system_is_a_contraceptive(
    substances: tuple[str, ...],
) -> None:
    assert is_contraceptive(substances)


@pytest.mark.parametrize(
    "substances",
    [
        ("ACÉTATE DE CYPROTÉRONE", "ÉTHINYLESTRADIOL"),  # Diane 35: acne
        ("ÉTHINYLESTRADIOL",),  # on its own
        ("ESTRADIOL HÉMIHYDRATÉ", "LÉVONORGESTREL"),  # Femseptcombi: menopause
        ("DROSPIRÉNONE", "ESTRADIOL HÉMIHYDRATÉ"),  # Angeliq: menopause
        ("DIÉNOGEST",),  # Visanne: endometriosis
        ("ACÉTATE DE NOMÉGESTROL",),  # Lutenyl
        ("LÉVOTHYROXINE SODIQUE",),
        (),
    ],
)
def test_a_menopause_acne_or_other_treatment_is_not(substances: tuple[str, ...]) -> None:
    assert not is_contraceptive(substances)
