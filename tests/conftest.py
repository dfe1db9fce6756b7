"""Shared, session-scoped fixtures: tiny transformers-built checkpoints and the converted SmolLM2 demo."""
import pathlib
import sys

import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import llama  # noqa: E402
from demo_model import demo_model_dir  # noqa: E402


@pytest.fixture(scope="session")
def make_tiny_llama(tmp_path_factory):
    """Factory: a tiny random LlamaForCausalLM built and saved by transformers -> (dir, hf_model).

    Cached per argument set, so every test that asks for the same shape shares one checkpoint.
    """
    cache = {}

    def make(n_kv=2, rope_scaling=None, tied=False, sharded=False, n_heads=4, seed=0):
        key = (n_kv, repr(rope_scaling), tied, sharded, n_heads, seed)
        if key not in cache:
            from transformers import LlamaConfig as HFConfig, LlamaForCausalLM
            torch.manual_seed(seed)
            cfg = HFConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=n_heads, num_key_value_heads=n_kv, max_position_embeddings=256,
                           rope_theta=10000.0, rope_scaling=rope_scaling, tie_word_embeddings=tied,
                           rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)
            model = LlamaForCausalLM(cfg).eval()
            path = tmp_path_factory.mktemp("tiny_llama")
            model.save_pretrained(path, max_shard_size="40KB" if sharded else "5GB")
            cache[key] = (path, model)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def demo_dir():
    return demo_model_dir()


@pytest.fixture(scope="session")
def demo_model(demo_dir):
    return llama.load_model(demo_dir)


@pytest.fixture(scope="session")
def demo_tokenizer(demo_dir):
    return llama.load_tokenizer(demo_dir)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: OpenMP threads only add synchronisation (and stalls on a busy shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
