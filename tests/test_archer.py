"""ArCHer's pieces: word tokenizer, TinyGPT.hidden, multi-turn play, the critic's targets, the
actor's advantage sign, filtered BC's quantile, CHAI's pick, token-level PPO's GAE and update."""

import copy

import numpy as np
import pytest
import torch

from hrlzoo.envs.twenty_questions import TwentyQuestionsBatch, make_world
from hrlzoo.lm.multiturn import discounted_returns, play, sampling_actor, turns_rollout
from hrlzoo.lm.tokenizer import WordTokenizer
from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    world = make_world(8, 4, seed=0)
    tok = WordTokenizer(world.words())
    model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=16, max_seq_len=64))
    return world, tok, model


def test_word_tokenizer_round_trip(tmp_path, setup):
    world, tok, _ = setup
    text = f"questions {world.question(1)} yes {world.guess(2)} no"
    ids = tok.encode(text, bos=True, eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) == len(text.split()) + 2
    assert tok.decode(ids[1:-1]) == text
    tok.save(tmp_path / "t.json")
    assert WordTokenizer.load(tmp_path / "t.json") == tok
    with pytest.raises(ValueError):
        tok.encode("is it purple ?")


def test_hidden_feeds_the_head(setup):
    _, tok, model = setup
    ids = torch.randint(3, tok.vocab_size, (2, 5))
    assert torch.allclose(model(ids), model.head(model.hidden(ids)))


def test_play_records_turns_and_returns(setup):
    world, tok, model = setup
    env = TwentyQuestionsBatch(world, 4, max_turns=3)
    g = torch.Generator().manual_seed(0)
    games = play(env, tok, sampling_actor(model, tok, max_new_tokens=6, generator=g), np.arange(8), gamma=0.5)
    assert len(games) == 8
    for game in games:
        assert 1 <= len(game) <= 3 and game[-1].done and not any(t.done for t in game[:-1])
        assert game[0].observation == "questions"
        for a, b in zip(game, game[1:]):
            assert b.observation == a.next_observation
        rewards = [t.reward for t in game]
        assert [t.mc_return for t in game] == pytest.approx(discounted_returns(rewards, 0.5))
        assert game[0].trajectory_reward == sum(rewards)
        t = game[0]
        assert t.prompt_ids == tok.encode(t.observation, bos=True) and len(t.action_ids) == len(t.logprobs)
    roll = turns_rollout([t for gm in games for t in gm], tok.pad_id)
    assert roll.mask.sum() == sum(len(t.action_ids) for gm in games for t in gm)
    assert discounted_returns([-1, -1, 0], 0.9) == pytest.approx([-1.9, -1.0, 0.0])


def _trainer(setup, **kw):
    from stages.archer.archer import ArcherConfig, ArcherTrainer, DoubleCritic

    _, tok, model = setup
    policy = copy.deepcopy(model)
    cfg = ArcherConfig(critic_lr=1e-3, lm_lr=1e-3, critic_epochs=1, actor_epochs=1, batch_size=4, grad_accum=2,
                       max_new_tokens=6, **kw)
    return ArcherTrainer(policy, DoubleCritic(copy.deepcopy(model)), tok, cfg, seed=0)


def _transitions(setup, n=8):
    from stages.archer.archer import transitions

    world, tok, model = setup
    env = TwentyQuestionsBatch(world, 4, max_turns=3)
    games = play(env, tok, sampling_actor(model, tok, max_new_tokens=6, generator=torch.Generator().manual_seed(1)),
                 np.arange(n) % world.n_objects)
    return games, transitions(games, tok)


def test_critic_regresses_q_on_bootstrapped_targets(setup):
    """With gamma = 0 the Q target is the reward alone: the critic's Q must move towards it."""
    from stages.archer.archer import ReplayBuffer

    tr = _trainer(setup, gamma=0.0, tau=1.0)
    _, trans = _transitions(setup)
    buf = ReplayBuffer(100)
    for t in trans:
        buf.add(t)
    s, a = [t.state for t in trans], [t.action for t in trans]
    r = torch.tensor([t.reward for t in trans])
    with torch.no_grad():
        before = ((tr.critic(s, a)[0] - r) ** 2).mean()
    for _ in range(30):
        tr.critic_step(trans)
    with torch.no_grad():
        after = ((tr.critic(s, a)[0] - r) ** 2).mean()
    assert after < 0.5 * before
    # tau = 1: the target is a copy of the critic after every step
    for p, q in zip(tr.critic.parameters(), tr.target.parameters()):
        assert torch.equal(p, q)


def test_actor_step_raises_the_probability_of_positive_advantage(setup, monkeypatch):
    """The actor's loss is -A * sum log pi: with a critic that says A > 0 for every utterance,
    an actor step raises the log-prob of the sampled utterances."""
    from hrlzoo.lm.sampler import completion_logprobs
    from stages.archer import archer

    tr = _trainer(setup)
    _, trans = _transitions(setup)
    captured = {}
    real = archer._sample_utterances

    def fixed(model, tok, states, cfg, gen):
        if "roll" not in captured:
            captured["roll"] = real(model, tok, states, cfg, gen)
        return captured["roll"]

    monkeypatch.setattr(archer, "_sample_utterances", fixed)

    class PlusOne(torch.nn.Module):
        def forward(self, s, a):
            z = torch.zeros(len(s))
            return z + 1.0, z + 1.0, z, z            # Q = 1, V = 0: A = 1 > 0

    tr.critic = PlusOne()
    roll = real(tr.policy, tr.tok, [t.state for t in trans], tr.cfg, torch.Generator().manual_seed(5))[0]
    captured["roll"] = (roll, None)
    with torch.no_grad():
        before = completion_logprobs(tr.policy, roll.trimmed()).sum()
    stats = tr.actor_step(trans)
    with torch.no_grad():
        after = completion_logprobs(tr.policy, roll.trimmed()).sum()
    assert stats["advantage_mean"] == pytest.approx(1.0) and after > before


def test_filtered_bc_keeps_the_top_decile(setup):
    from stages.archer.archer import ArcherConfig, FilteredBC

    _, tok, model = setup
    games, _ = _transitions(setup, n=16)
    bc = FilteredBC(copy.deepcopy(model), tok, ArcherConfig(actor_epochs=1, batch_size=2, grad_accum=2), seed=0)
    info = bc.update(games, update_actor=True)
    returns = np.array([g[0].trajectory_reward for g in games])
    assert info["cutoff"] == pytest.approx(np.quantile(returns, 0.9))
    assert info["kept_turns"] == sum(len(g) for g, R in zip(games, returns) if R >= info["cutoff"])
    assert np.isfinite(info["bc_loss"])
    assert "bc_loss" not in bc.update(games, update_actor=False)   # warm-up: no policy step


def test_chai_picks_the_sample_with_the_largest_target_q(setup):
    from stages.archer.archer import chai_actor

    _, tok, model = setup

    class LikesGuesses(torch.nn.Module):  # Q = number of words in the utterance
        def forward(self, s, a):
            q = torch.tensor([float(len(x)) for x in a])
            return q, q, q * 0, q * 0

    act = chai_actor(model, LikesGuesses(), tok, k=4, max_new_tokens=6, temperature=1.0,
                     gen=torch.Generator().manual_seed(0))
    prompts = [tok.encode("questions", bos=True)] * 6
    out = act(["questions"] * 6, prompts)
    single = sampling_actor(model, tok, max_new_tokens=6, generator=torch.Generator().manual_seed(0))(
        ["questions"] * 6, prompts)
    assert np.mean([len(t.split()) for t in out.texts]) >= np.mean([len(t.split()) for t in single.texts])


def test_token_gae_and_ppo_update(setup):
    from hrlzoo.algos.token_ppo import TokenPPO, TokenPPOConfig, token_gae

    # lambda = 1, values 0: advantages are the discounted returns
    adv, ret = token_gae([0.0] * 4, [0.0, -1.0, 0.0, -1.0], [1.0, 0.5, 1.0, 0.0], lam=1.0)
    assert adv == pytest.approx([-1.5, -1.5, -1.0, -1.0]) and ret == adv
    # lambda = 0: one-step TD errors
    adv, _ = token_gae([1.0, 2.0], [0.0, -1.0], [1.0, 0.0], lam=0.0)
    assert adv == pytest.approx([1.0, -3.0])

    world, tok, model = setup
    games, _ = _transitions(setup)
    ppo = TokenPPO(copy.deepcopy(model), TokenPPOConfig(epochs=1, minibatches=2, lr=1e-3), pad_id=tok.pad_id)
    turns, a, r, v = ppo.targets(games)
    roll = turns_rollout(turns, tok.pad_id)
    assert torch.allclose(v[~roll.mask], torch.zeros(1)) and abs(float(a[roll.mask].mean())) < 1e-5
    before = copy.deepcopy(ppo.model.state_dict())
    stats = ppo.update(games)
    assert np.isfinite(stats["loss"]) and any(not torch.equal(before[k], x) for k, x in ppo.model.state_dict().items())
