"""A message review handler for IVS Chat (an AWS Lambda function, Python runtime).

IVS Chat calls it for every message sent to a room whose messageReviewHandler names it, and waits at most
200 ms for the answer. It denies messages with links (the sender is told why), masks a few words (everyone
gets the rewritten message, marked with the attribute `moderated`), and delivers everything else unchanged.

Run it offline with the Lambda Runtime Interface Emulator: see "Message review handlers" in the README.
"""

import re

MASKED_WORDS = {"darn", "heck", "spam"}


def mask(word):
    text = word.group()
    return "*" * len(text) if text.lower() in MASKED_WORDS else text


def handler(event, context):
    content = event["Content"]
    if "http://" in content or "https://" in content:
        return {"ReviewResult": "DENY", "Attributes": {"Reason": "Links are not allowed in this room"}}
    masked = re.sub(r"[A-Za-z]+", mask, content)
    attributes = dict(event.get("Attributes") or {})
    if masked != content:
        attributes["moderated"] = "true"
    return {"ReviewResult": "ALLOW", "Content": masked, "Attributes": attributes}
