import javax.smartcardio.*;

/*
 * Java smartcardio as a real client: connect T=1, an exclusive section
 * (SCardBeginTransaction/EndTransaction) around a SELECT, one more APDU
 * outside it, disconnect with reset.  Usage: java SmartcardIoRT.java READER
 */
public class SmartcardIoRT {
	static void send(Card card, byte[] apdu) throws CardException {
		ResponseAPDU r = card.getBasicChannel().transmit(new CommandAPDU(apdu));
		System.out.printf("sw %04X%n", r.getSW());
	}

	public static void main(String[] args) throws Exception {
		CardTerminal terminal = TerminalFactory.getDefault().terminals().getTerminal(args[0]);
		Card card = terminal.connect("T=1");
		card.beginExclusive();
		send(card, new byte[] { 0x00, (byte) 0xA4, 0x04, 0x00, 0x00 });
		card.endExclusive();
		send(card, new byte[] { 0x00, (byte) 0xB0, 0x00, 0x00, 0x04 });
		card.disconnect(true);
	}
}
