/**
 * The unit's status line (`systemctl status`): what podsock is doing, followed by what the container
 * last said in its own STATUS=. The container's text joins podsock's instead of replacing it, so that
 * both show. Pure: it composes the text; the activation sends it.
 */

/** Characters of the container's STATUS= kept in the line: the whole datagram stays under systemd's 4096 bytes (sd_notify(3)). */
export const CONTAINER_STATUS_MAX = 1024;

/** podsock's text, then `; container: ` and the container's (cut to CONTAINER_STATUS_MAX) when it said anything. */
export function composeStatus(own: string, container: string | null): string {
  if (container === null || container === '') return own;
  const cut = container.length > CONTAINER_STATUS_MAX ? `${container.slice(0, CONTAINER_STATUS_MAX - 1)}…` : container;
  return `${own}; container: ${cut}`;
}

/** One activation's status line. Each setter returns the whole line to send as STATUS=. */
export class StatusLine {
  private own = '';
  private container: string | null = null;

  /** podsock's part changed. */
  update(own: string): string {
    this.own = own;
    return this.text();
  }

  /** The container sent STATUS=. */
  fromContainer(text: string): string {
    this.container = text;
    return this.text();
  }

  text(): string {
    return composeStatus(this.own, this.container);
  }
}
