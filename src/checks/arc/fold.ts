/**
 * The ARC fields we write, folded to lines of 78 characters where they can be (RFC 5322 section
 * 2.1.1); a signature value keeps a line of its own, however long (under 998 for any key of up
 * to 8192 bits). Folds go only where a space is, so the relaxed form the seal signs is the same
 * folded or not, and an MTA that refolds at spaces breaks nothing.
 */
import { fieldFromText, type HeaderField } from '../message/index.js';

const WIDTH = 78;
const FOLD = '\r\n ';

/**
 * A tag=value field, tags in the order given, `; ` between them, the `b=` tag on a line of its
 * own.
 *
 * @example
 * tagListField('ARC-Seal', [['i', '1'], ['a', 'rsa-sha256'], ['b', '']]).raw.toString()
 * // 'ARC-Seal: i=1; a=rsa-sha256; b='
 */
export function tagListField(
  name: string,
  tags: ReadonlyArray<readonly [string, string]>,
): HeaderField {
  return foldedField(
    name,
    tags.map(([tag, value], index) => ({
      word: `${tag}=${value}${index === tags.length - 1 ? '' : ';'}`,
      // The signature goes on a line of its own, whole: a fold inside it would be a space in the
      // relaxed form the next seal signs, and common sealers sign it unbroken.
      ownLine: tag === 'b' && value.length > 0,
    })),
  );
}

/**
 * A field whose value is free text (the ARC-Authentication-Results), folded at its spaces.
 *
 * @example
 * wordsField('ARC-Authentication-Results', 'i=1; mx.example.org; spf=pass').raw.toString()
 * // 'ARC-Authentication-Results: i=1; mx.example.org; spf=pass'
 */
export function wordsField(name: string, value: string): HeaderField {
  return foldedField(
    name,
    value
      .split(' ')
      .filter((word) => word !== '')
      .map((word) => ({ word })),
  );
}

/** `Name:` and the words, a space between, folded before a word that would pass WIDTH. */
function foldedField(
  name: string,
  words: ReadonlyArray<{ word: string; ownLine?: boolean }>,
): HeaderField {
  let text = `${name}:`;
  let line = text.length;
  for (const { word, ownLine } of words) {
    if (ownLine || (line + 1 + word.length > WIDTH && line > name.length + 1)) {
      text += `${FOLD}${word}`;
      line = 1 + word.length;
    } else {
      text += ` ${word}`;
      line += 1 + word.length;
    }
  }
  return fieldFromText(text);
}
