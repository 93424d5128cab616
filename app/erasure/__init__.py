"""GDPR/CCPA erasure of the gateway's own copies of one person's data.

An erase request (Shopify ``customers/redact``, a custom shop's ``customer.erase_requested``)
is validated when it is parsed (``ErasureRequest``: a whole e-mail address, a phone of at
least 7 digits or a non-empty customer id; otherwise the webhook answers 422 naming the
field and nothing is stored). Recording it does two cheap things in the webhook's
transaction: a delivery to every ``customers`` route (the planner, as before) and a
``pending`` row in ``erasure_requests``. The webhook answers 202 at once; nothing is
searched or scrubbed inside it.

How the person is found (``refs``): at record time every canonical event gets rows in
``person_refs`` — SHA-256 hashes of the normalized identities it concerns (the customer's
e-mail and phone scoped to the source connection, the customer key, the order key). The
erase request is turned into the same hashes, so finding the person is an index lookup
on whole values: never a substring, never another connection's person with the same
e-mail. What the person's events reveal (the customer id an order names, its e-mail, its
order key) expands the search once; with ``rules.customers.erase_linked_erp_records``
(default true) the ERP-side records linked to the person (``entity_links``,
``customer_matches``, the ERP's records about their orders) are included.

How it is scrubbed (``scrub``, ``job``): a background job (``job.run_erasures``, run by
the scheduled-job tick in the arq worker and the in-process worker) works through the
person's events in batches with a cursor; inside each of the person's rows it replaces
personal fields and every occurrence of the person's identifying strings, keeping ids,
order numbers, SKUs, titles and amounts. Walks are iterative with a depth cap. The
request itself keeps its identifiers until it has been delivered to every route, then
its own rows are scrubbed too (its payload keeps only the customer id, or a hash in place
of the e-mail) and a ``customer_erased`` finding reports the counts per kind.

Progress and results are readable at ``GET /api/v1/erasures`` (``router``, ``service``).
"""
