"""Infrastructure every other package stands on; private to agentops.

The file system seam (:mod:`.fs`), the clock (:mod:`.clock`), UTC time
stamps (:mod:`.timestamps`), secret redaction (:mod:`.redact`), the JSON log
sink and logger (:mod:`.log`), terminal output (:mod:`.terminal`), the logged
HTTP client behind ``ctx.http`` (:mod:`.http`) and SQLite files
(:mod:`.sqlite`). Nothing here knows what an agent is.
"""
