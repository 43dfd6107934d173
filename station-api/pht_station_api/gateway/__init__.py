"""The policy-enforcing SPARQL gateway: check, execute on an explicit dataset, audit."""
