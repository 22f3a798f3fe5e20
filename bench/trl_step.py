"""PyTorch + PEFT side of bench/trl.ts: LoRA SFT steps on a model dir, same batch and threads; prints JSON."""

import json
import resource
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

req = json.loads(sys.argv[1])
torch.set_num_threads(req["threads"])
# denormal floats are slow on x86 CPUs; --flush-denormal flushes them to zero, to see whether they slow a step
torch.set_flush_denormal(req["flushDenormal"])
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(req["model"], dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=req["rank"], lora_alpha=2 * req["rank"], target_modules=req["targets"], task_type="CAUSAL_LM"))
model.train()
ids = torch.tensor(req["ids"])
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
times = []
for step in range(req["steps"] + 1):
    start = time.perf_counter()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    optimizer.zero_grad()
    if step > 0:  # the first step warms up allocators and kernels
        times.append(time.perf_counter() - start)
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "loss": loss.item(), "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
