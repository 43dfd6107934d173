"""Data stores the gateway reads: embedded Oxigraph or the hospital's own SPARQL endpoint.

Both execute queries in killable worker processes (:mod:`.pools`), so a timeout really stops
the query; the gateway only ever hands them an explicit dataset built from the policy.
"""
