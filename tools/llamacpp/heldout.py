"""Held-out text for measuring quantisation quality (perplexity and KL
divergence of a quantised GGUF against its F16 export). Written for bidora's
tests; no model in the repository was trained on it."""

from dataclasses import dataclass, field
import math
import re


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0
    tags: list = field(default_factory=list)

    def total(self):
        return self.price * self.quantity


class Inventory:
    def __init__(self):
        self.items = {}

    def add(self, item):
        if item.name in self.items:
            self.items[item.name].quantity += item.quantity
        else:
            self.items[item.name] = item

    def remove(self, name, count=1):
        item = self.items.get(name)
        if item is None:
            raise KeyError(f"no item named {name!r}")
        if item.quantity < count:
            raise ValueError(f"only {item.quantity} of {name} left")
        item.quantity -= count
        if item.quantity == 0:
            del self.items[name]

    def value(self):
        return sum(item.total() for item in self.items.values())

    def by_tag(self, tag):
        return [item for item in self.items.values() if tag in item.tags]


def distance(a, b):
    return math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2)


def polygon_area(points):
    area = 0.0
    for i in range(len(points)):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % len(points)]
        area += x1 * y2 - x2 * y1
    return abs(area) / 2


def centroid(points):
    n = len(points)
    if n == 0:
        raise ValueError("no points")
    return (sum(p[0] for p in points) / n, sum(p[1] for p in points) / n)


TOKEN = re.compile(r"\s*(?:(\d+\.?\d*)|(.))")


def tokenize(expr):
    for number, op in TOKEN.findall(expr):
        if number:
            yield float(number)
        elif op.strip():
            yield op


def evaluate(expr):
    """Evaluate + - * / and parentheses with the usual precedence."""
    tokens = list(tokenize(expr))
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def atom():
        tok = take()
        if tok == "(":
            value = sum_()
            take()
            return value
        if tok == "-":
            return -atom()
        return tok

    def product():
        value = atom()
        while peek() in ("*", "/"):
            if take() == "*":
                value *= atom()
            else:
                value /= atom()
        return value

    def sum_():
        value = product()
        while peek() in ("+", "-"):
            if take() == "+":
                value += product()
            else:
                value -= product()
        return value

    return sum_()


def binary_search(items, target):
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def word_counts(text):
    counts = {}
    for word in re.findall(r"[a-z']+", text.lower()):
        counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


if __name__ == "__main__":
    inv = Inventory()
    inv.add(Item("bolt", 0.25, 100, ["hardware"]))
    inv.add(Item("nut", 0.1, 250, ["hardware"]))
    inv.add(Item("drill", 49.0, 2, ["tools"]))
    print(f"stock value: {inv.value():.2f}")
    print(polygon_area([(0, 0), (4, 0), (4, 3), (0, 3)]))
    print(evaluate("2 * (3 + 4) - 10 / 4"))
    print(binary_search([1, 3, 5, 7, 9, 11], 7))
    print(word_counts("the cat and the hat and the bat")[:3])
