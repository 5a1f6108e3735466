"""The sending pipeline's parts, one idea each; `crm.campaigns.pipeline` runs them (and re-exports them).

- claims: which deliveries a sender takes, gives back, or puts off; when a campaign is done.
- prepare: a campaign compiled once for sending (CampaignSender) and the people of a batch.
- record: what happened to each message, written as it is answered (Recorder and the failure rules).
- batch: one claimed batch sent over one connection, paced globally and per recipient domain.
"""
