import java.util.List;
import javax.smartcardio.*;

/*
 * Java smartcardio against the test card: list the reader, connect with
 * T=1, transmit a SELECT, disconnect with reset.  Prints what it did; the
 * shell test checks the card's log.  Usage: java SmartcardIo.java READER
 */
public class SmartcardIo {
	public static void main(String[] args) throws Exception {
		String name = args[0];
		List<CardTerminal> terminals = TerminalFactory.getDefault().terminals().list();
		CardTerminal terminal = null;
		for (CardTerminal t : terminals) {
			System.out.println("terminal " + t.getName());
			if (t.getName().equals(name))
				terminal = t;
		}
		if (terminal == null)
			throw new IllegalStateException("reader " + name + " not listed");
		if (!terminal.waitForCardPresent(5000))
			throw new IllegalStateException("no card");
		Card card = terminal.connect("T=1");
		System.out.println("protocol " + card.getProtocol());
		ResponseAPDU r = card.getBasicChannel().transmit(
			new CommandAPDU(new byte[] { 0x00, (byte) 0xA4, 0x04, 0x00, 0x00 }));
		System.out.printf("sw %04X%n", r.getSW());
		card.disconnect(true);
		System.out.println("done");
	}
}
