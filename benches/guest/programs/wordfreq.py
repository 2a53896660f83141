"""Interpretive Python: generated text through dicts, sorting, string methods,
classes, json and hashlib; prints one digest of everything it computed."""
import hashlib
import json


class Counter:
    def __init__(self):
        self.counts = {}

    def add(self, word):
        self.counts[word] = self.counts.get(word, 0) + 1

    def top(self, n):
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def words(seed, count):
    syllables = ["ka", "to", "ri", "mu", "sen", "lo", "va", "pe", "qu", "zi", "dor", "an"]
    state = seed
    for _ in range(count):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        length = 1 + state % 4
        yield "".join(syllables[(state >> (4 * k)) % len(syllables)] for k in range(length))


def main():
    counter = Counter()
    lines = []
    line = []
    for word in words(42, 150000):
        counter.add(word)
        line.append(word.capitalize() if len(line) == 0 else word)
        if len(line) == 12:
            lines.append(" ".join(line) + ".")
            line = []
    text = "\n".join(lines)
    record = {
        "top": counter.top(25),
        "distinct": len(counter.counts),
        "longest": max(lines, key=len),
        "vowels": sum(text.count(v) for v in "aeiou"),
        "title": text[:2000].title().swapcase()[:64],
    }
    encoded = json.dumps(record, sort_keys=True)
    again = json.loads(encoded)
    assert again["distinct"] == record["distinct"]
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:16]
    print(f"RESULT python {record['distinct']} {digest}")


main()
