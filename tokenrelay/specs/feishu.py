"""Feishu and Lark as the producer sees them: ``oc_`` chat ids, ``ou_``/``on_`` user ids."""

from __future__ import annotations

import re

from tokenrelay.specs.base import ChannelSpec

#: card text limit in bytes of card JSON (the card's 30 KB, less the card's own JSON)
MAX_BYTES = 30_000
#: chat ids: chat (oc_), user open id (ou_), user union id (on_)
CHAT_ID = re.compile(r"(oc|ou|on)_[A-Za-z0-9_-]{1,64}")


class FeishuSpec(ChannelSpec):
    """Feishu (open platform): a CardKit streaming card per reply."""

    name = "feishu"
    chat_id_pattern = CHAT_ID
    chat_id_expected = "an oc_ chat id, or an ou_/on_ user id"
    max_units = MAX_BYTES
    unit = "bytes of card JSON"
    native = "CardKit streaming cards (always)"
    default_base = "https://open.feishu.cn/open-apis"



class LarkSpec(FeishuSpec):
    """Lark: the same client on the Lark base URL (``TOKENRELAY_LARK_*`` settings)."""

    name = "lark"
    default_base = "https://open.larksuite.com/open-apis"
