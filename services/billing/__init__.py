"""The billing service: account ledgers, invoices, overdue state and top-ups through the payment providers."""
