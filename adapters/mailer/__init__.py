"""The mailer: delivers the e-mails the log records (the log is the outbox), exactly once per
`Message-ID` short of one window (README, "Secure messaging")."""
