"""The ordonnance as a document: the PDF a prescriber prints or a patient receives."""
