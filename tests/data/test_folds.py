import pytest
from omegaconf import OmegaConf

from cfnsr.data.folds import make_split

PAPER = OmegaConf.load("conf/folds/paper.yaml")


def test_paper_scheme_tests_every_actor_once():
    tested = [a for fold in PAPER.test_actors for a in fold]
    assert sorted(tested) == list(range(1, 25))
    assert list(PAPER.test_actors[2]) == [9, 10, 11, 12]  # fold k tests actors 4k-3..4k


@pytest.mark.parametrize("fold", range(1, 7))
def test_paper_protocol_validates_on_the_test_fold(fold):
    s = make_split(PAPER.test_actors, fold, "paper")
    assert s.val_actors == s.test_actors == tuple(range(4 * fold - 3, 4 * fold + 1))
    assert len(s.train_actors) == 20 and not set(s.train_actors) & set(s.test_actors)


@pytest.mark.parametrize("fold", range(1, 7))
def test_clean_protocol_is_actor_disjoint(fold):
    s = make_split(PAPER.test_actors, fold, "clean")
    parts = [set(s.train_actors), set(s.val_actors), set(s.test_actors)]
    assert sum(map(len, parts)) == 24 and set.union(*parts) == set(range(1, 25))
    assert len(s.val_actors) == 4 and len(s.train_actors) == 16
    assert s.val_actors == tuple(PAPER.test_actors[fold % 6])


def test_cfnsr5_never_tests_actors_21_to_24():
    five = OmegaConf.load("conf/folds/cfnsr5.yaml")
    for fold in range(1, 6):
        s = make_split(five.test_actors, fold, "paper")
        assert {21, 22, 23, 24} <= set(s.train_actors)


def test_bad_fold_and_protocol_are_refused():
    with pytest.raises(ValueError, match="folds 1..6"):
        make_split(PAPER.test_actors, 7, "paper")
    with pytest.raises(ValueError, match="protocol"):
        make_split(PAPER.test_actors, 1, "oracle")
    with pytest.raises(ValueError, match="overlap"):
        make_split(PAPER.test_actors, 1, "clean", val_actors=[[4, 5, 6, 7]] * 6)


@pytest.mark.parametrize("fold", range(1, 7))
def test_search_protocol_never_touches_the_test_fold(fold):
    clean = make_split(PAPER.test_actors, fold, "clean")
    s = make_split(PAPER.test_actors, fold, "search")
    assert s.test_actors == clean.test_actors
    # validation drawn from the clean run's training actors: neither the test fold nor its epoch-selection block
    assert set(s.val_actors) <= set(clean.train_actors)
    assert s.val_actors == tuple(PAPER.test_actors[(fold + 1) % 6])
    assert not set(s.train_actors) & set(s.test_actors) and not set(s.train_actors) & set(s.val_actors)
    assert len(s.train_actors) == len(clean.train_actors) == 16  # as many training actors as the final run


def test_search_protocol_fold1_of_the_paper_scheme():
    s = make_split(PAPER.test_actors, 1, "search")
    assert s.test_actors == (1, 2, 3, 4) and s.val_actors == (9, 10, 11, 12)
    assert s.train_actors == (5, 6, 7, 8, *range(13, 25))


def test_search_validation_must_come_from_the_training_actors():
    with pytest.raises(ValueError, match="drawn from the fold's training actors"):
        make_split(PAPER.test_actors, 1, "search", search_val_actors=[[5, 6, 7, 8]] * 6)  # fold 1's clean val
    with pytest.raises(ValueError, match="at least 3 folds"):
        make_split([[1, 2], [3, 4]], 1, "search", num_actors=4)
    s = make_split(PAPER.test_actors, 1, "search", search_val_actors=[[13, 14]] + [[1]] * 5)
    assert s.val_actors == (13, 14) and 9 in s.train_actors
