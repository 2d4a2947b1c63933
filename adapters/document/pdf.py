"""The ordonnance numérique as a PDF, as it is printed (seed 000, contract.md "The ordonnance
as a document").

The page is drawn from the caller's `PrescriptionView`, the same masked view the JSON read
answers: a prescriber under the patient's opposition gets a view without execution data, so
the document cannot show more than the read would.

reportlab draws the page: it is maintained, installs as a pure-Python wheel with no system
library (WeasyPrint needs Pango), registers a TrueType font once per process and subsets it
into each document (fpdf2 parses the font again for every document), and it ships the
Bitstream Vera fonts, which cover every French letter (é, œ, «», ’…): the text is
extractable with its accents, and no font file needs vendoring. The QR code is drawn as
vector squares from segno's matrix, the library behind `qr.svg`, so it is sharp at any scale.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import reportlab
import segno
from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from adapters.document import french
from domain.calendar import local_day
from domain.events import DispensedLine
from domain.views import DispensationView, LineView, PrescriptionView

REGULAR, BOLD = "OrdoVera", "OrdoVera-Bold"
_FONTS = Path(reportlab.__file__).parent / "fonts"
pdfmetrics.registerFont(TTFont(REGULAR, str(_FONTS / "Vera.ttf")))
pdfmetrics.registerFont(TTFont(BOLD, str(_FONTS / "VeraBd.ttf")))

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN
QR_SIZE = 38 * mm
NUMBER_SIZE = 10
QR_QUIET_MODULES = 4  # the quiet zone the QR specification asks around the symbol
FOOTER_TOP = MARGIN + 24 * mm  # the body stops above the consent mention and the fixed text
INDENT = 7 * mm
GREY = Color(0.35, 0.35, 0.35)
RED = Color(0.75, 0.1, 0.1)

TITLE = "Ordonnance numérique"
SECURE_MENTION = "Ordonnance sécurisée : quantités, posologies et durées écrites en toutes lettres."
CONSENT_MENTION = (
    "Accord du patient pour la consultation des données d'exécution par le prescripteur : "
)
# The fixed text every ordonnance numérique carries (seed 000).
TRANSMISSION_TEXT = (
    "Les données de cette prescription sont transmises électroniquement à l'Assurance Maladie."
)
MASKED_EXECUTION = (
    "Données d'exécution non communiquées au prescripteur : le patient s'oppose à leur "
    "consultation."
)


@dataclass(frozen=True)
class Style:
    font: str
    size: float
    leading: float
    color: Color = black


BODY = Style(REGULAR, 10, 13)
STRONG = Style(BOLD, 10.5, 14)
SMALL = Style(REGULAR, 8.5, 11, GREY)
HEADING = Style(BOLD, 12, 17)


def render(view: PrescriptionView, qr_payload: str) -> bytes:
    """The A4 PDF of one prescription as `view` shows it, the QR code holding `qr_payload`."""
    buffer = io.BytesIO()
    # Every font of the file embedded: start in ours, not in the unembedded Helvetica default.
    # (types-reportlab types initialFontName as a float; reportlab takes a registered name.)
    canvas = Canvas(
        buffer,
        pagesize=A4,
        pageCompression=1,
        initialFontName=REGULAR,  # type: ignore[arg-type]
    )
    canvas.setTitle(f"{TITLE} n° {view.prescription_id}")
    canvas.setSubject("Ordonnance numérique")
    canvas.setCreator("ordo")
    pages = _Pages(canvas, view)
    aside = _draw_qr(canvas, qr_payload, view.prescription_id)
    _draw_heading(pages, view, width=TEXT_WIDTH - aside - 6 * mm)
    for line in view.lines:
        _draw_line(pages, line, secure=view.kind == "secure")
    _draw_execution(pages, view)
    pages.finish()
    canvas.save()
    return buffer.getvalue()


class _Pages:
    """A cursor down the pages: text flows onto a new page, each with the ordonnance's footer."""

    def __init__(self, canvas: Canvas, view: PrescriptionView) -> None:
        self.canvas = canvas
        self.view = view
        self.page_no = 1
        self.y = PAGE_HEIGHT - MARGIN

    def text(
        self, text: str, style: Style, *, indent: float = 0, width: float = TEXT_WIDTH
    ) -> None:
        for row in _rows(text, style, width - indent):
            self.room(style.leading)
            self.canvas.setFont(style.font, style.size)
            self.canvas.setFillColor(style.color)
            self.canvas.drawString(MARGIN + indent, self.y - style.size, row)
            self.y -= style.leading

    def space(self, height: float) -> None:
        self.y -= height

    def room(self, height: float) -> None:
        if self.y - height < FOOTER_TOP:
            self._footer()
            self.canvas.showPage()
            self.page_no += 1
            self.y = PAGE_HEIGHT - MARGIN
            self.text(f"{TITLE} n° {self.view.prescription_id} (suite)", SMALL)
            self.space(4 * mm)

    def rule(self) -> None:
        self.room(4 * mm)
        self.canvas.setStrokeColor(GREY)
        self.canvas.setLineWidth(0.5)
        self.canvas.line(MARGIN, self.y - 2 * mm, PAGE_WIDTH - MARGIN, self.y - 2 * mm)
        self.y -= 4 * mm

    def finish(self) -> None:
        self._footer()

    def _footer(self) -> None:
        """The consent mention and the fixed text on every page, with the number and page."""
        canvas, view = self.canvas, self.view
        canvas.setStrokeColor(GREY)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, FOOTER_TOP - 3 * mm, PAGE_WIDTH - MARGIN, FOOTER_TOP - 3 * mm)
        answer = "OUI" if view.execution_view_consent else "NON"
        canvas.setFillColor(black)
        canvas.setFont(REGULAR, 9)
        canvas.drawString(MARGIN, FOOTER_TOP - 9 * mm, CONSENT_MENTION)
        canvas.setFont(BOLD, 9)
        canvas.drawString(
            MARGIN + pdfmetrics.stringWidth(CONSENT_MENTION, REGULAR, 9),
            FOOTER_TOP - 9 * mm,
            answer,
        )
        canvas.setFont(REGULAR, 9)
        canvas.drawString(MARGIN, FOOTER_TOP - 14 * mm, TRANSMISSION_TEXT)
        canvas.setFont(REGULAR, 8)
        canvas.setFillColor(GREY)
        canvas.drawString(MARGIN, MARGIN, f"{TITLE} n° {view.prescription_id}")
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN, f"page {self.page_no}")


def _rows(text: str, style: Style, width: float) -> Iterator[str]:
    """`text` in rows no wider than `width`: broken between words, and inside a word longer
    than a row (a pasted code, a label without spaces) rather than past the margin."""
    for row in simpleSplit(text, style.font, style.size, width):
        rest = row
        while len(rest) > 1 and _width(rest, style) > width:
            cut = _fitting(rest, style, width)
            yield rest[:cut]
            rest = rest[cut:]
        yield rest


def _fitting(text: str, style: Style, width: float) -> int:
    """How many leading characters of `text` fit in `width` (at least one)."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _width(text[:middle], style) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _width(text: str, style: Style) -> float:
    width: float = pdfmetrics.stringWidth(text, style.font, style.size)
    return width


def _draw_qr(canvas: Canvas, payload: str, number: str) -> float:
    """Top right of the first page: the QR code and, centred under it, the number it holds.
    Answers the width they take from the right margin."""
    aside = max(QR_SIZE, pdfmetrics.stringWidth(number, BOLD, NUMBER_SIZE))
    centre = PAGE_WIDTH - MARGIN - aside / 2
    matrix = segno.make(payload, error="m").matrix
    modules = len(matrix) + 2 * QR_QUIET_MODULES
    left, top = centre - QR_SIZE / 2, PAGE_HEIGHT - MARGIN
    canvas.saveState()
    # Drawn in module units, row 0 at the top: integer coordinates, one filled path for the
    # whole symbol (no seam between adjacent squares, a short content stream).
    canvas.translate(left, top - QR_SIZE)
    canvas.scale(QR_SIZE / modules, QR_SIZE / modules)
    symbol = canvas.beginPath()
    for row_no, row in enumerate(matrix):
        y = modules - QR_QUIET_MODULES - row_no - 1
        for start, length in _dark_runs(row):
            symbol.rect(start + QR_QUIET_MODULES, y, length, 1)
    canvas.setFillColor(black)
    canvas.drawPath(symbol, stroke=0, fill=1)
    canvas.restoreState()
    canvas.setFont(BOLD, NUMBER_SIZE)
    canvas.drawCentredString(centre, top - QR_SIZE - 4 * mm, number)
    return aside


def _dark_runs(row: bytearray | tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """(start, length) of each run of dark modules: one rectangle a run, not one a module."""
    start = None
    for column, dark in enumerate([*row, 0]):
        if dark and start is None:
            start = column
        elif not dark and start is not None:
            yield start, column - start
            start = None


def _draw_heading(pages: _Pages, view: PrescriptionView, *, width: float) -> None:
    """Who wrote it, for whom, when: the left column, beside the QR code."""
    pages.text(TITLE.upper(), Style(BOLD, 16, 21), width=width)
    if view.kind == "secure":
        pages.text(SECURE_MENTION, Style(BOLD, 9, 12), width=width)
    if view.status == "cancelled":
        pages.text("ANNULÉE", Style(BOLD, 14, 19, RED), width=width)
    pages.space(3 * mm)
    pages.text(f"Prescripteur : RPPS {view.prescriber_rpps}", STRONG, width=width)
    pages.text(f"Patient : INS {view.patient.ins}", STRONG, width=width)
    pages.space(2 * mm)
    pages.text(f"Date de prescription : {french.long_date(view.issued_on)}", BODY, width=width)
    pages.text(f"Valable jusqu'au {french.long_date(view.expires_on)}", SMALL, width=width)
    pages.y = min(pages.y, PAGE_HEIGHT - MARGIN - QR_SIZE - 8 * mm)  # below the QR's number
    pages.rule()
    pages.text("Prescription", HEADING)


def _draw_line(pages: _Pages, line: LineView, *, secure: bool) -> None:
    pages.room(STRONG.leading + 2 * BODY.leading)  # keep a line's title with its first details
    pages.space(1.5 * mm)
    pages.text(f"{line.line_no}. {line.product.label}", STRONG)
    product = line.product
    code = product.code or "(dénomination commune internationale)"
    pages.text(f"{product.system} {code}", SMALL, indent=INDENT)
    dosage = french.with_words(line.dosage) if secure else line.dosage
    pages.text(f"Posologie : {dosage}", BODY, indent=INDENT)
    pages.text(f"Durée : {french.days(line.duration_days, spelt=secure)}", BODY, indent=INDENT)
    pages.text(f"Quantité : {french.packs(line.quantity, spelt=secure)}", BODY, indent=INDENT)
    for mention in _mentions(line, secure=secure):
        pages.text(mention, BODY, indent=INDENT)
    if line.dispensed is not None and line.remaining is not None:
        units = "" if line.remaining_units is None else f" ({french.units(line.remaining_units)})"
        pages.text(
            f"Délivré : {french.packs(line.dispensed, spelt=False)} ; "
            f"reste : {french.packs(line.remaining, spelt=False)}{units}",
            SMALL,
            indent=INDENT,
        )


def _mentions(line: LineView, *, secure: bool) -> list[str]:
    """What the prescriber wrote about a line besides product, dosage and duration: the
    narcotic mentions, "non substituable" with its reason, and the pharmacy it names."""
    mentions = []
    if line.non_substitutable is not None:
        mentions.append(f"Non substituable ({line.non_substitutable.reason})")
    if line.narcotic:
        mentions.append("Stupéfiant")
    elif line.assimilated:
        mentions.append("Assimilé stupéfiant")
    if line.fraction_days is not None:
        fraction = french.days(line.fraction_days, spelt=secure)
        mentions.append(f"Délivrance fractionnée par périodes de {fraction}")
    if line.overlap_allowed:
        mentions.append("Chevauchement autorisé")
    if line.designated_finess is not None:
        mentions.append(f"Pharmacie désignée : FINESS {line.designated_finess}")
    return mentions


def _draw_execution(pages: _Pages, view: PrescriptionView) -> None:
    """The dispensings so far, for whoever may see them; the prescriber under the patient's
    opposition reads that they are withheld, and nothing of them."""
    pages.space(3 * mm)
    pages.rule()
    pages.text("Délivrances", HEADING)
    if not view.execution_visible:
        pages.text(MASKED_EXECUTION, BODY)
        return
    if not view.dispensations:
        pages.text("Aucune délivrance enregistrée.", BODY)
        return
    for dispensation in view.dispensations:
        pages.text(_dispensation_title(dispensation), BODY)
        for given in dispensation.lines:  # the product given: a generic when substituted
            quantity = french.packs(given.quantity, spelt=False)
            pages.text(
                f"ligne {given.line_no} : {quantity} de {given.product.label}{_noted(given)}",
                SMALL,
                indent=INDENT,
            )


def _noted(given: DispensedLine) -> str:
    """What the pharmacist noted of a line handed over: MTE-PH, the generic refused, the lot."""
    notes = [f"non substituable ({given.non_substitution})"] if given.non_substitution else []
    if given.generic_refused:
        notes.append("générique refusé par le patient")
    if given.lot:
        notes.append(f"lot {given.lot}")
    return f" ({', '.join(notes)})" if notes else ""


# The mention a procedure's dispensing carries (CSP R5123-2-1; R5134-4-2, 3°).
PROCEDURE_MENTIONS = {
    "exceptional_supply": "dispensation supplémentaire exceptionnelle",
    "contraceptive_extension": "dispensation supplémentaire de contraceptifs oraux",
}


def _dispensation_title(dispensation: DispensationView) -> str:
    states = [word for word, on in (("facturée", dispensation.billed),) if on]
    if dispensation.procedure is not None:
        states.insert(0, PROCEDURE_MENTIONS[dispensation.procedure])
    if dispensation.withdrawn:
        states = ["retirée (saisie en erreur)"]
    state = f" ({', '.join(states)})" if states else ""
    day = french.short_date(local_day(dispensation.dispensed_at, dispensation.finess))
    return f"Le {day}, pharmacie FINESS {dispensation.finess}{state}"
