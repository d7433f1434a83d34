/**
 * Terminal output: colours only on a TTY and when NO_COLOR is unset (https://no-color.org), so
 * pipes and files get plain text; and aligned tables that stay readable when piped to grep or cut.
 */
import { styleText } from 'node:util';

type Stream = NodeJS.WriteStream;

export function colours(stream: Stream): boolean {
  return stream.isTTY === true && (process.env.NO_COLOR ?? '') === '';
}

type Style = 'bold' | 'dim' | 'green' | 'red' | 'yellow';

/** `text` styled for `stream`, or unchanged where colours are off. */
export function paint(stream: Stream, style: Style, text: string): string {
  return colours(stream) ? styleText(style, text) : text;
}

export interface Column<Row> {
  title: string;
  value: (row: Row) => string;
  /** Colour of a cell, judged from its row (only applied on a colour stream). */
  style?: (row: Row) => Style | undefined;
}

/**
 * Rows as left-aligned columns separated by two spaces, the header in bold. Padding is computed
 * on the plain text so that colour codes do not skew the alignment.
 */
export function table<Row>(stream: Stream, columns: Array<Column<Row>>, rows: readonly Row[]): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, index) => Math.max(column.title.length, ...cells.map((line) => (line[index] ?? '').length)));
  const render = (texts: string[], styles: Array<Style | undefined>): string =>
    texts
      .map((text, index) => {
        const padded = index === texts.length - 1 ? text : text.padEnd(widths[index] ?? 0);
        const style = styles[index];
        return style === undefined ? padded : paint(stream, style, padded);
      })
      .join('  ')
      .trimEnd();
  const header = render(
    columns.map((column) => column.title),
    columns.map(() => 'bold'),
  );
  const body = rows.map((row, rowIndex) =>
    render(
      cells[rowIndex] ?? [],
      columns.map((column) => column.style?.(row)),
    ),
  );
  return `${[header, ...body].join('\n')}\n`;
}

/** How boolean cells read: words, so that `grep yes` works on the output. */
export function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}
