"""Real delivery: consent, recipients, email composition, channels' settings and the dispatcher.

Each module has one job and a narrow interface (see docs/delivery.md):

- :mod:`.consent` — ``may_send``: may this customer get this kind of message on this channel?
- :mod:`.recipients` — the address a channel sends to (E.164 phone numbers for SMS).
- :mod:`.layout` — partial templates (``_layout.html``) and the text part derived once.
- :mod:`.email` — composition: layout, inlined CSS, advertising prefix, compliance headers.
- :mod:`.config` — the channel settings of ``journeys.yaml`` as typed values.
- :mod:`.factory` — the channels a project's settings describe.
- :mod:`.dispatcher` — ``dispatch``: the outbox through the channels, once, with retries.

This package imports nothing heavy on its own; import the module you need.
"""
