#!/bin/bash
# Rung 3 (ABC -> D), one DAgger round on A, B and C from the rung-3 checkpoint (rung 2's DAgger settings),
# evaluated on the first 100 official chains of D.
cd /work/main
export OMP_NUM_THREADS=1
echo "dagger start $(date)"
python -m trainer.dagger --out runs/dagger_abc --data data/calvin_abc_noise \
    --config trainer/configs/paligemma_ph_lstm_state.json --init runs/rung3_abc/latest \
    --rounds 1 --episodes 150 --beta 0.5 --beta-decay 0.7 --scenes A B C --workers 2 --seed 0 --noise-corr 0.95 \
    train.batch_size=16 train.max_steps=4500 train.max_minutes=22 optim.lr=5e-4 optim.warmup_steps=100 \
    data.num_workers=1 > runs/dagger_abc.log 2>&1
echo "dagger done $(date)"
python -m bench.run --policy vla:runs/dagger_abc/round_0/train/latest --scene D --chains 100 --workers 2 --seed 0 \
    --out runs/dagger_abc_eval_D --quiet > runs/dagger_abc_eval.log 2>&1
echo "eval done $(date)"
