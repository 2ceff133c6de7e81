"""Mail-log summary and compromise detection: pflogsumm's numbers for Postfix (and the same summary
for Exim), plus the accounts and hosts that look compromised, with the log lines that show it."""
