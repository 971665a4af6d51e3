"""Texts of lint warnings that tests built on the shared test header pin whole."""

NO_LICENCE = (
    "no licence constraint for prescription: any agent may be assigned such a case, licensed "
    "or not; add `prescription: [<licence types that may take it>]` under `constraints.licence`"
)
"""``lint.no_licence`` for ``caseroute.testing.MINIMAL_HEADER`` (a licence for clinical only)."""
