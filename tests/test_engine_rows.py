"""Which rows reach the generation engine and with what budget (prefix_rft.trainers.engine_rows), on fakes of
TRL's vLLM objects; tests/scale runs the same code against real engines."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from prefix_rft.trainers.engine_rows import per_row_budgets, rows_to_generate


class Accelerator:
    def __init__(self, num_processes=1, counts=None):
        self.num_processes, self.counts, self.device = num_processes, counts, "cpu"
        self.is_main_process = True

    def gather(self, t):
        return torch.tensor(self.counts)


def test_rows_to_generate_pads_only_where_vllm_needs_equal_counts():
    wanted = [3, 0]
    plain = SimpleNamespace(use_vllm=False, accelerator=Accelerator(2, [2, 4]))
    assert rows_to_generate(plain, wanted, 6) == [0, 3]
    one = SimpleNamespace(use_vllm=True, accelerator=Accelerator(1))
    assert rows_to_generate(one, wanted, 6) == [0, 3]
    # another process sends 4 rows: this one pads with its first 2 skipped rows
    two = SimpleNamespace(use_vllm=True, accelerator=Accelerator(2, [2, 4]))
    assert rows_to_generate(two, wanted, 6) == [0, 1, 2, 3]
    # nobody wants a row: no engine call at all
    assert rows_to_generate(SimpleNamespace(use_vllm=True, accelerator=Accelerator(2, [0, 0])), [], 4) == []


class Params:
    def __init__(self, max_tokens):
        self.max_tokens = max_tokens

    def clone(self):
        return Params(self.max_tokens)


class LLM:
    def __init__(self):
        self.calls = []

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        self.calls.append([p.max_tokens for p in sampling_params])
        return ["out"] * len(prompts)


def test_colocate_samples_each_row_with_its_own_budget():
    llm = LLM()
    trainer = SimpleNamespace(
        use_vllm=True,
        accelerator=Accelerator(),
        vllm_generation=SimpleNamespace(mode="colocate", tensor_parallel_size=1, llm=llm),
    )
    with per_row_budgets(trainer, [48, 13, 0]):
        assert llm.generate(["a", "b", "c"], Params(48), use_tqdm=False) == ["out"] * 3
    assert llm.calls == [[48, 13, 1]]  # a budget is at least one token
    llm.generate(["a", "b", "c"], [Params(48)] * 3)  # outside the block: the class method again
    assert llm.calls[-1] == [48, 48, 48] and "generate" not in vars(llm)


def test_server_sends_one_request_per_budget_and_keeps_row_order():
    requests = []

    def generate(prompts, n=1, max_tokens=16, logprobs=0):
        requests.append((list(prompts), max_tokens))
        return {
            "prompt_ids": [[p] for p in prompts],
            "completion_ids": [[p] * max_tokens for p in prompts],
            "logprobs": [[[-0.5]] * max_tokens for _ in prompts],
            "logprob_token_ids": None,
        }

    client = SimpleNamespace(generate=generate)
    trainer = SimpleNamespace(
        use_vllm=True,
        accelerator=Accelerator(),
        vllm_generation=SimpleNamespace(mode="server", vllm_client=client),
    )
    with per_row_budgets(trainer, [3, 1, 3, 2]):
        out = client.generate([10, 11, 12, 13], n=1, max_tokens=3, logprobs=0)
    assert requests == [([11], 1), ([13], 2), ([10, 12], 3)]
    assert out["completion_ids"] == [[10] * 3, [11], [12] * 3, [13] * 2]
    assert out["prompt_ids"] == [[10], [11], [12], [13]]
    assert [len(x) for x in out["logprobs"]] == [3, 1, 3, 2] and out["logprob_token_ids"] is None
    assert client.generate is generate  # restored


def test_transformers_backend_is_untouched():
    trainer = SimpleNamespace(use_vllm=False)
    with per_row_budgets(trainer, [1, 2]):
        pass
