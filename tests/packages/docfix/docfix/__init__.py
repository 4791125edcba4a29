"""Untyped fixture: the types live only in docstrings (stubgen.aggressive reads them)."""

from os.path import basename  # no __all__: stubgen alone drops this re-export


def scale(x, factor=2.0):
    """Scale a number (Sphinx style).

    :param x: the number
    :type x: float
    :param float factor: the multiplier
    :rtype: float
    """
    return x * factor


def label(name, count):
    """Label something (Google style).

    Args:
        name (str): the name
        count (int): how many

    Returns:
        str: the label
    """
    return f"{name} x{count}"


def options(level, **kwargs):
    """Collect options (numpydoc style); `verbose` arrives through **kwargs.

    Parameters
    ----------
    level : int
        the level
    verbose : bool, optional
        be loud

    Returns
    -------
    dict of str to int
        what was chosen
    """
    return {"level": level, "verbose": int(bool(kwargs.get("verbose")))}


def vague(thing):
    """Takes a thing of some sort.

    :param thing: something
    :type thing: a frobnicator
    """
    return thing
