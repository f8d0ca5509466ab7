"""The durable data of an agent, with no I/O: what the store keeps and reads back.

The state file's model (:mod:`.state`), the ledger of guarded actions
(:mod:`.ledger`), the journal's records and their one fold (:mod:`.journal`),
money kept over windows (:mod:`.money`), the vocabulary of run statuses
(:mod:`.status`) and how an invocation ended (:mod:`.outcome`).
"""
