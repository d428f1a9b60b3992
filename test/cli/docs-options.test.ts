import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Command } from 'commander';
import { buildProgram } from '../../lib/cli/main.js';
import { REPO_ROOT } from '../helpers/paths.js';

/** README.md and every page of docs/, by name. */
function docPages(): Map<string, string> {
  const pages = new Map<string, string>([['README.md', readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')]]);
  for (const file of readdirSync(path.join(REPO_ROOT, 'docs')).filter((name) => name.endsWith('.md'))) {
    pages.set(`docs/${file}`, readFileSync(path.join(REPO_ROOT, 'docs', file), 'utf8'));
  }
  return pages;
}

/** Every command of the `ironlime` tree by its full name (`ironlime tenant add`), with its long options. */
async function commandOptions(): Promise<Map<string, readonly string[]>> {
  const program = await buildProgram({ setExitCode: () => undefined }, ['node', 'ironlime']);
  const commands = new Map<string, readonly string[]>();
  const walk = (command: Command, name: string): void => {
    commands.set(name, command.options.flatMap((option) => (option.long === undefined ? [] : [option.long])));
    for (const sub of command.commands) {
      walk(sub, `${name} ${sub.name()}`);
    }
  };
  walk(program, 'ironlime');
  return commands;
}

/**
 * The `ironlime …` command lines a page shows: inline code that starts with `ironlime `, and lines of
 * fenced blocks from the word `ironlime` on. A `# comment` is cut off.
 */
function shownCommandLines(text: string): string[] {
  const lines = [...text.matchAll(/`(ironlime [^`]+)`/g)].map((match) => match[1] as string);
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) {
      fenced = !fenced;
    } else if (fenced) {
      const match = /(?<![\w/.$-])ironlime ([a-z].*)$/.exec(line);
      if (match !== null) {
        lines.push(`ironlime ${(match[1] as string).replace(/\s#.*$/, '')}`);
      }
    }
  }
  return lines;
}

/**
 * The command a shown line names and the options it passes: words after the command's name up to an
 * alternative (`|`) or an elision (a word `…`); `show|delete` names its first alternative.
 */
function parseShownLine(line: string, commands: ReadonlyMap<string, readonly string[]>): { command: string; options: string[] } {
  const words = line.split(/\s+/);
  let command = 'ironlime';
  let index = 1;
  while (index < words.length) {
    const next = `${command} ${(words[index] as string).split('|')[0]}`;
    if (!commands.has(next)) {
      break;
    }
    command = next;
    index += 1;
  }
  const options: string[] = [];
  for (const word of words.slice(index)) {
    if (word === '|' || word.startsWith('…')) {
      break;
    }
    const option = /^\[?(--[a-z][a-z0-9-]*)/.exec(word);
    if (option !== null && option[1] !== '--help') {
      options.push(option[1] as string);
    }
  }
  return { command, options };
}

describe('the docs and the ironlime command agree on options', function () {
  it('names every option of every command somewhere in README.md or docs/', async function () {
    const text = [...docPages().values()].join('\n');
    const missing: string[] = [];
    for (const [command, options] of await commandOptions()) {
      for (const option of options.filter((name) => name !== '--help' && !new RegExp(`${name}(?![a-z0-9-])`).test(text))) {
        missing.push(`${command} ${option}`);
      }
    }
    expect(missing, 'options in --help that no page names').to.deep.equal([]);
  });

  it('shows only options the command it names has', async function () {
    const commands = await commandOptions();
    const unknown: string[] = [];
    let checked = 0;
    for (const [page, text] of docPages()) {
      for (const line of shownCommandLines(text)) {
        const { command, options } = parseShownLine(line, commands);
        checked += options.length;
        for (const option of options.filter((name) => !(commands.get(command) ?? []).includes(name))) {
          unknown.push(`${page}: ${command} has no ${option} (${line.slice(0, 100)})`);
        }
      }
    }
    expect(checked, 'options found in the pages').to.be.greaterThan(200);
    expect(unknown, 'options shown that the command does not take').to.deep.equal([]);
  });
});
