"""Assurance Maladie reconciliation: an invoice checked against what the log says happened.

The insurer sends every invoice a pharmacy transmitted; each one gets exactly one outcome, the
first that applies in the contract's order:

    invalid               the line is not an invoice (bad JSON, missing fields, wrong types,
                          a FINESS or CIP13 whose check key fails, no lines, a quantity < 1)
    unknown_prescription  no prescription has that number (a wrong check character included)
    receipt_invalid       the invoice carries the dispensing's receipt, and its signature does
                          not hold, or it is not that pharmacy's dispensing of that
                          prescription, or it names other packs than the invoice bills
    duplicate_invoice     this pharmacy's invoice number was already reconciled, in this batch
                          or an earlier one
    no_dispensation       the invoice's pharmacy dispensed nothing of the prescription
    product_mismatch      a billed product is neither the prescribed one nor a substitute that
                          pharmacy recorded when dispensing that line
    quantity_mismatch     a line bills more than that pharmacy dispensed of it
    over_billed           with the invoices of that pharmacy already `matched` for the
                          prescription (in this batch or an earlier one), a line bills more
                          than it dispensed: the insurer would pay the same packs twice
                          (in units where the catalogue states them, as quantity_mismatch)
    amount_mismatch       the pharmacy recorded billing under this invoice number (the billing
                          endpoint) and the invoice's quantities or amounts differ from it
    matched               everything billed was dispensed, by that pharmacy, as billed

An invoice counts as reconciled (and its number as used) once it got an outcome from
`no_dispensation` on: `invalid`, `unknown_prescription` and `receipt_invalid` never name a real
invoice, so the pharmacy may send it again, corrected, under the same number. Only `matched`
invoices count as paid: they are what later invoices of the same packs are `over_billed`
against, in the order the invoices arrive. Withdrawn dispensings count nowhere.

Everything here is pure: the adapters look the prescriptions up and record the results.
`invoices`: what an invoice is, and whether a line is one; `records`: the facts an invoice is
checked against, from a prescription's state; `decision`: the outcome, in the contract's
order; `details`: the texts a person acts on; `receipts`: an invoice's receipt against what it
bills; `chunk`: a batch's invoices in order.
"""
