// The tokenizers of edgeproof/_tokenizers.py, rule for rule, built from their to_dict() JSON
// (bundled in each bundle's preprocessing.json). Python and JavaScript must give the same ids.

const IMDB_FILTERS = /[!"#$%&()*+,\-./:;<=>?@[\\\]^_`{|}~\t\n]/g;

/** IMDb reviews -> the ids of keras.datasets.imdb + pad_sequences (see ImdbTokenizer in Python). */
export class ImdbTokenizer {
  constructor(d) {
    if (d?.type !== 'imdb') throw new Error(`not an imdb tokenizer dict (type=${JSON.stringify(d?.type)})`);
    for (const [key, value] of Object.entries({ start_char: 1, oov_char: 2, index_from: 3, split: ' ', lower: 'ascii' })) {
      if (d[key] !== undefined && d[key] !== value) throw new Error(`unsupported imdb tokenizer setting ${key}=${JSON.stringify(d[key])}`);
    }
    this.numWords = d.num_words;
    this.maxlen = d.maxlen;
    this.unknown = d.unknown ?? 'drop';
    this.ids_ = new Map();
    d.vocab.forEach((w, i) => this.ids_.set(w, i + 4));
    for (const w of d.rare_words ?? []) if (!this.ids_.has(w)) this.ids_.set(w, 2);
  }

  /** ASCII-lowercase, filters -> space, split on ' ', drop empty strings. */
  static normalize(text) {
    return text.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(IMDB_FILTERS, ' ').split(' ').filter((w) => w.length > 0);
  }

  /** Unpadded ids [1, ...] plus the words that were dropped (not in the IMDb index). */
  idsWithDropped(text) {
    const words = ImdbTokenizer.normalize(text);
    if (words.length === 0) throw new Error('cannot encode an empty review: the text has no words after normalization');
    const ids = [1];
    const dropped = [];
    for (const w of words) {
      const id = this.ids_.get(w) ?? (this.unknown === 'oov' ? 2 : null);
      if (id === null) dropped.push(w);
      else ids.push(id);
    }
    if (ids.length === 1) {
      throw new Error(`the review has no word from the IMDb word index (${words.length} words, e.g. '${words[0]}'); write it in English`);
    }
    return { ids, dropped, words };
  }

  /** One review -> Int32Array(maxlen): keep the LAST maxlen ids, zeros in front. */
  encode(text) {
    return padPre(this.idsWithDropped(text).ids, this.maxlen);
  }
}

export function padPre(ids, maxlen) {
  const tail = ids.slice(-maxlen);
  const out = new Int32Array(maxlen);
  out.set(tail, maxlen - tail.length);
  return out;
}

const WORD_PATTERN = /[\p{L}\p{N}]+|[^\p{L}\p{N}\s]/gu;

/** Word/punctuation tokens for the translator (see WordTokenizer in Python). */
export class WordTokenizer {
  constructor(d) {
    if (d?.type !== 'word') throw new Error(`not a word tokenizer dict (type=${JSON.stringify(d?.type)})`);
    if (d.pattern_js !== undefined && d.pattern_js !== String(WORD_PATTERN)) {
      throw new Error(`unsupported word tokenizer pattern ${d.pattern_js} (expected ${WORD_PATTERN})`);
    }
    this.tokens = d.tokens;
    this.pad = d.pad ?? 0;
    this.unk = d.unk ?? 1;
    this.bos = d.bos ?? 2;
    this.eos = d.eos ?? 3;
    this.ids_ = new Map(this.tokens.map((t, i) => [t, i]));
  }

  static tokenize(text) {
    return text.toLowerCase().match(WORD_PATTERN) ?? [];
  }

  /** Text -> Int32Array(maxLen): [BOS] tokens [EOS] then PAD; tokens cut so that EOS fits. */
  encode(text, { maxLen = 32, bos = false, eos = true } = {}) {
    const room = maxLen - Number(bos) - Number(eos);
    if (room < 1) throw new Error(`maxLen=${maxLen} leaves no room for a token`);
    const tokens = WordTokenizer.tokenize(text);
    if (tokens.length === 0) throw new Error('cannot encode an empty sentence: the text has no tokens');
    const ids = tokens.slice(0, room).map((t) => this.ids_.get(t) ?? this.unk);
    const all = [...(bos ? [this.bos] : []), ...ids, ...(eos ? [this.eos] : [])];
    const out = new Int32Array(maxLen);
    out.set(all);
    return out;
  }

  /** Ids -> tokens: stop at EOS, skip PAD and BOS, UNK -> '<unk>'. */
  decodeTokens(ids) {
    const out = [];
    for (const i of ids) {
      if (i === this.eos) break;
      if (i === this.pad || i === this.bos) continue;
      if (!(i >= 0 && i < this.tokens.length)) throw new Error(`id ${i} is outside the vocabulary (0..${this.tokens.length - 1})`);
      out.push(this.tokens[i]);
    }
    return out;
  }

  static detokenize(tokens) {
    return tokens.join(' ').replace(/ ([.,!?;:)])/g, '$1').replace(/\( /g, '(').replace(/ ?' ?/g, "'").replace(/ - /g, '-');
  }

  decode(ids) {
    return WordTokenizer.detokenize(this.decodeTokens(ids));
  }
}
