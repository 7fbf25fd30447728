"""A LoRA fine-tune as peft makes one, for the README's "PEFT: LoRA and DoRA" section: a tiny
GPT-2 built from its config (nothing downloaded), LoRA on its attention, its MLP and its
token embedding. Try ``--arg dora=True`` for DoRA's magnitude vectors.
"""

from __future__ import annotations


def gpt2_lora(rank: int = 8, dora: bool = False):
    """GPT-2 with 2 blocks of width 64; LoRA of rank ``rank`` (the MLP's half of it, by
    ``rank_pattern``) on ``c_attn``, ``c_fc`` and ``wte``; the base frozen, as peft leaves it."""
    import peft
    import transformers

    config = transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=2, vocab_size=1000, bos_token_id=0, eos_token_id=0
    )
    lora = peft.LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=["c_attn", "c_fc", "wte"],
        rank_pattern={"c_fc": rank // 2},
        use_dora=dora,
    )
    return peft.get_peft_model(transformers.GPT2LMHeadModel(config), lora)
