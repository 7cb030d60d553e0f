"""FAQ fixtures shared by the AI and flow tests: a bilingual knowledge file and a flow that answers from it."""

from __future__ import annotations

#: Two entries, English and Chinese; a question about bicycles finds neither.
BILINGUAL_KNOWLEDGE = """
entries:
  - question: How do I return an item?
    alternatives: ["Can I send my order back?"]
    keywords: [return]
    answer: Send it back within 30 days; the label is in your account.
  - question: 怎么退货？
    keywords: [退货]
    answer: 收货后30天内可以退货。
"""

#: A flow whose one chain is the FAQ at ``kb/faq.yaml``; it keeps listening whatever happens.
FAQ_FLOW = """\
flow: faq-bot
ai:
  helpdesk:
    providers:
      - use: faq
        knowledge: kb/faq.yaml
steps:
  listen: { wait: message }
  answer: { ai: helpdesk, on_error: listen, next: listen }
"""
