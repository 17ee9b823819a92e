"""edgeproof.verify: parity of every artifact against its source model, budgets, the deploy gate, reports."""
